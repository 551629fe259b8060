"""Which run store a command uses: ``--db PATH``, ``--storage URL`` or ``SPANFLOW_STORAGE_URL``.

In that order of precedence; with none of them, the SQLite file ``spanflow.db`` in the working
directory. The URL forms are those of `spanflow.storage.storage_from_url`.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from spanflow.cli.errors import CommandError
from spanflow.storage import (
    DEFAULT_SQLITE_PATH,
    STORAGE_URL_ENV,
    SqliteStorage,
    Storage,
    storage_from_url,
)

__all__ = ["STORAGE_HELP", "SelectedStorage", "add_storage_arguments", "select_storage"]

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


def select_storage(options: argparse.Namespace) -> SelectedStorage:
    """The store the options (or the environment) name; nothing is opened yet.

    Raises:
        CommandError: The URL is malformed or names an unknown kind of store.
    """
    if options.db is not None:
        path = Path(options.db).expanduser().resolve()
        return SelectedStorage(SqliteStorage(path), f"SQLite, {path}")
    if options.storage is not None:
        url, source = options.storage, "--storage"
    else:
        url = os.environ.get(STORAGE_URL_ENV, "").strip()
        source = STORAGE_URL_ENV
        if not url:
            path = Path(DEFAULT_SQLITE_PATH).resolve()
            return SelectedStorage(SqliteStorage(path), f"SQLite, {path}")
    try:
        storage = storage_from_url(url)
    except ValueError as exc:
        raise CommandError(f"{source}: {exc}") from None
    return SelectedStorage(storage, _describe(url, storage))


def _describe(url: str, storage: Storage) -> str:
    if isinstance(storage, SqliteStorage):
        path = storage.path
        return f"SQLite, {path if path == ':memory:' else Path(path).resolve()}"
    parts = urlsplit(url)
    if parts.scheme.lower() in ("postgresql", "postgres"):
        host = parts.hostname or "localhost"
        port = f":{parts.port}" if parts.port else ""
        return f"PostgreSQL, {host}{port}{parts.path or '/'}"
    return "memory (nothing is kept after the command)"
