"""Choosing a store from one string: a storage URL, or a file path, as the CLI and apps take it.

``memory://`` gives a `MemoryStorage`; ``postgresql://…`` or ``postgres://…`` a
`PostgresStorage`; ``sqlite:///relative.db``, ``sqlite:////absolute.db`` (SQLAlchemy's
spelling) or a plain file path a `SqliteStorage`. `default_storage_from_env` reads the
``SPANFLOW_STORAGE_URL`` environment variable and falls back to ``spanflow.db`` in the
working directory.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

from spanflow.storage.base import Storage
from spanflow.storage.memory import MemoryStorage
from spanflow.storage.postgres import PostgresStorage
from spanflow.storage.sqlite import SqliteStorage

__all__ = ["DEFAULT_SQLITE_PATH", "STORAGE_URL_ENV", "default_storage_from_env", "storage_from_url"]

STORAGE_URL_ENV = "SPANFLOW_STORAGE_URL"
"""The environment variable `default_storage_from_env` reads."""

DEFAULT_SQLITE_PATH = "spanflow.db"
"""The SQLite file used when ``SPANFLOW_STORAGE_URL`` is not set."""

_CHOICES = "use memory://, sqlite:///path/to/file.db, postgresql://user@host/db or a file path"
_LOOKS_LIKE_A_URL = re.compile(r"(?i)(memory|sqlite|postgres|postgresql):")


def storage_from_url(url_or_path: str) -> Storage:
    """The store a URL or path names; nothing connects or opens until first use.

    Args:
        url_or_path: ``memory://``; ``postgresql://user@host:5432/db`` (or ``postgres://``);
            ``sqlite:///runs.db`` (relative), ``sqlite:////var/lib/runs.db`` (absolute),
            ``sqlite://`` (in memory); or a path to a SQLite file.

    Raises:
        ValueError: The string is empty or names an unknown scheme.
    """
    if not url_or_path.strip():
        raise ValueError(f"the storage URL is empty: {_CHOICES}")
    scheme, separator, rest = url_or_path.partition("://")
    if not separator:
        if _LOOKS_LIKE_A_URL.match(url_or_path):  # "sqlite:runs.db": a URL, mistyped
            raise ValueError(f"{url_or_path!r} is missing the '//' after its scheme: {_CHOICES}")
        return SqliteStorage(url_or_path)
    scheme = scheme.lower()
    if scheme == "memory" and not rest:
        return MemoryStorage()
    if scheme in ("postgresql", "postgres"):
        return PostgresStorage(url_or_path)
    if scheme == "sqlite":
        if not rest:
            return SqliteStorage(":memory:")
        if rest.startswith("/") and len(rest) > 1:
            return SqliteStorage(rest[1:])
    raise ValueError(f"unsupported storage URL {url_or_path!r}: {_CHOICES}")


def default_storage_from_env(environ: Mapping[str, str] | None = None) -> Storage:
    """The store named by ``SPANFLOW_STORAGE_URL``, or SQLite file ``spanflow.db`` here.

    Args:
        environ: The environment to read; `os.environ` when omitted.
    """
    url = (os.environ if environ is None else environ).get(STORAGE_URL_ENV, "").strip()
    return storage_from_url(url or DEFAULT_SQLITE_PATH)
