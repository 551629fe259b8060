"""Which run store a command uses: ``--db PATH``, ``--storage URL`` or ``SPANFLOW_STORAGE_URL``.

In that order of precedence; with none of them, the SQLite file ``spanflow.db`` in the working
directory. The URL forms are those of `spanflow.storage.storage_from_url`.

Commands that only read (``runs list``, ``runs show``) open a SQLite file read-only and never
create one: a missing file is "no database at PATH", and a file another program owns is a
`StorageError`, left as it was.
"""

from __future__ import annotations

import argparse
import os
import shlex
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from spanflow.cli.errors import CommandError
from spanflow.storage import (
    DEFAULT_SQLITE_PATH,
    STORAGE_URL_ENV,
    PostgresStorage,
    SqliteStorage,
    Storage,
    storage_from_url,
)

__all__ = [
    "DEMO_DB",
    "STORAGE_HELP",
    "SelectedStorage",
    "add_storage_arguments",
    "select_storage",
]

DEMO_DB = Path(tempfile.gettempdir()) / "spanflow-demo.db"
"""Where ``spanflow demo`` stores its runs unless its ``--db`` says otherwise."""

STORAGE_HELP = (
    f"Runs are stored in --db PATH (a SQLite file), else --storage URL, else the "
    f"{STORAGE_URL_ENV} environment variable, else the SQLite file {DEFAULT_SQLITE_PATH} in the "
    f"working directory. Storage URLs: sqlite:///relative.db, sqlite:////absolute.db, "
    f"postgresql://user@host:5432/db, memory://."
)
"""The paragraph every command that stores runs shows in its ``--help``."""


@dataclass(frozen=True, slots=True)
class SelectedStorage:
    """A store not opened yet, and how to name it to a person."""

    storage: Storage
    where: str
    """``SQLite, /path/to/spanflow.db``, ``PostgreSQL, host:5432/db`` or ``memory``."""
    keeps_runs: bool = True
    """Whether a run stored there outlives the command (not so in memory)."""


def add_storage_arguments(parser: argparse.ArgumentParser) -> None:
    """``--db PATH`` and ``--storage URL`` (mutually exclusive)."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--db",
        type=Path,
        metavar="PATH",
        help=f"SQLite file holding the runs (default: {DEFAULT_SQLITE_PATH}, see below)",
    )
    group.add_argument(
        "--storage",
        metavar="URL",
        help=f"storage URL (default: ${STORAGE_URL_ENV}, see below)",
    )


def select_storage(options: argparse.Namespace, *, read_only: bool = False) -> SelectedStorage:
    """The store the options (or the environment) name; nothing is opened yet.

    Args:
        options: Parsed arguments of a command that called `add_storage_arguments`.
        read_only: The command only reads: a SQLite file is opened read-only and must exist,
            a PostgreSQL schema is read as it is (never created or upgraded).

    Raises:
        CommandError: The URL is malformed or names an unknown kind of store, or (read-only)
            there is no SQLite file at the path.
    """
    if options.db is not None:
        return _sqlite(Path(options.db).expanduser(), read_only=read_only)
    if options.storage is not None:
        url, source = options.storage, "--storage"
    else:
        url = os.environ.get(STORAGE_URL_ENV, "").strip()
        source = STORAGE_URL_ENV
        if not url:
            return _sqlite(Path(DEFAULT_SQLITE_PATH), read_only=read_only)
    try:
        storage = storage_from_url(url)
    except ValueError as exc:
        raise CommandError(f"{source}: {exc}") from None
    if isinstance(storage, SqliteStorage) and storage.path != ":memory:":
        return _sqlite(Path(storage.path), read_only=read_only)
    if read_only and isinstance(storage, PostgresStorage):
        # A reading command never creates or upgrades a shared database's schema.
        storage = PostgresStorage(url, read_only=True)
    in_memory = isinstance(storage, SqliteStorage) or not storage.durable  # sqlite://, memory://
    return SelectedStorage(storage, _describe(url, storage), keeps_runs=not in_memory)


def _sqlite(path: Path, *, read_only: bool) -> SelectedStorage:
    path = path.resolve()
    if read_only and not path.is_file():
        raise CommandError(f"no database at {path}{_demo_hint(path)}")
    return SelectedStorage(SqliteStorage(path, read_only=read_only), f"SQLite, {path}")


def _demo_hint(missing: Path) -> str:
    """Where the demo's runs are, when there are some and they were not what was asked for."""
    if missing == DEMO_DB.resolve() or not DEMO_DB.is_file():
        return ""
    listing = shlex.join(["spanflow", "runs", "list", "--db", str(DEMO_DB)])
    return f" (spanflow demo keeps its runs in {DEMO_DB}: {listing})"


def _describe(url: str, storage: Storage) -> str:
    if isinstance(storage, SqliteStorage):
        return "SQLite, in memory (nothing is kept after the command)"
    parts = urlsplit(url)
    if parts.scheme.lower() in ("postgresql", "postgres"):
        host = parts.hostname or "localhost"
        port = f":{parts.port}" if parts.port else ""
        return f"PostgreSQL, {host}{port}{parts.path or '/'}"
    return "memory (nothing is kept after the command)"
