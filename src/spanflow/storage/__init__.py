"""Where runs and their snapshots live: the `Storage` protocol and its three stores.

`MemoryStorage` (nothing survives the process; the default of a bare workflow),
`SqliteStorage` (one file, several processes; the default for the CLI and apps) and
`PostgresStorage` (many workers; needs the ``postgres`` extra, imported only when such a store
is created). `storage_from_url` picks one from a URL or path; `default_storage_from_env` from
the ``SPANFLOW_STORAGE_URL`` environment variable, falling back to ``spanflow.db`` here.

The same stores keep agent memory (``spanflow.agents.Memory``): threads per resource and their
messages, behind the `ThreadStore` protocol.
"""

from spanflow.storage._url import (
    DEFAULT_SQLITE_PATH,
    STORAGE_URL_ENV,
    default_storage_from_env,
    storage_from_url,
)
from spanflow.storage.base import (
    DamagedRun,
    Lease,
    LoggedEvent,
    MessagePage,
    RunPage,
    RunStatus,
    Storage,
    StoredMessage,
    StoredRun,
    StoredThread,
    ThreadPage,
    ThreadStore,
)
from spanflow.storage.memory import MemoryStorage
from spanflow.storage.postgres import PostgresStorage
from spanflow.storage.sqlite import SqliteStorage

__all__ = [  # noqa: RUF022 - grouped by purpose, not sorted
    # The contract
    "DamagedRun",
    "Lease",
    "LoggedEvent",
    "RunPage",
    "RunStatus",
    "Storage",
    "StoredRun",
    # Agent memory
    "MessagePage",
    "StoredMessage",
    "StoredThread",
    "ThreadPage",
    "ThreadStore",
    # Stores
    "MemoryStorage",
    "PostgresStorage",
    "SqliteStorage",
    # Choosing one
    "DEFAULT_SQLITE_PATH",
    "STORAGE_URL_ENV",
    "default_storage_from_env",
    "storage_from_url",
]
