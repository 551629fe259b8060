"""``spanflow db migrate --storage URL``: create or upgrade the tables a deployment needs.

On PostgreSQL: spanflow's tables and procrastinate's schema (the job queue of
`spanflow.queue.QueueExecutor`), in one idempotent step that every worker also runs at start;
run it yourself before the first deployment, or to upgrade the tables while no worker runs. On
SQLite (a path, or ``sqlite:///...``): spanflow's tables only (there is no queue on SQLite).
Prints one line per set of tables, saying what it did; a second run says "up to date".
"""

from __future__ import annotations

import argparse
import asyncio
import os
from typing import Any

from spanflow.cli.errors import CommandError, UsageError
from spanflow.cli.storage import STORAGE_HELP, add_storage_arguments, select_storage
from spanflow.storage import STORAGE_URL_ENV, PostgresStorage, SqliteStorage

__all__ = ["add_command"]


def add_command(commands: Any) -> None:
    """Register ``db migrate`` on the ``spanflow`` parser's subcommands."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "db",
        help="manage the database: 'db migrate' creates or upgrades the tables",
        description="Manage the database that stores runs (and, on PostgreSQL, the job queue).",
    )
    actions = parser.add_subparsers(
        title="actions", dest="action", metavar="ACTION", parser_class=type(parser)
    )
    migrate = actions.add_parser(
        "migrate",
        help="create or upgrade spanflow's tables (and procrastinate's, on PostgreSQL)",
        description="Create or upgrade spanflow's tables and, on PostgreSQL, apply "
        "procrastinate's schema (the queue workers take jobs from) if it is absent. "
        "Idempotent: safe to run again, and while workers start.",
        epilog=STORAGE_HELP,
    )
    add_storage_arguments(migrate)
    migrate.set_defaults(handler=_migrate, command_name="db migrate", command_parser=migrate)
    parser.set_defaults(handler=_no_action, command_name="db", command_parser=parser)


def _no_action(options: argparse.Namespace) -> int:
    raise UsageError("no action given; try 'spanflow db migrate --storage URL'")


def _migrate(options: argparse.Namespace) -> int:
    selected = select_storage(options)
    if not selected.keeps_runs:
        raise CommandError(f"{selected.where} keeps nothing to migrate: name a database")
    if isinstance(selected.storage, PostgresStorage):
        url = options.storage or os.environ.get(STORAGE_URL_ENV, "").strip()
        lines = asyncio.run(_migrate_postgres(url))
    else:
        assert isinstance(selected.storage, SqliteStorage)  # the only other store that keeps runs
        asyncio.run(_open(selected.storage))
        lines = ["spanflow tables: ready (no job queue on this store: queues need PostgreSQL)"]
    for line in lines:
        print(f"{selected.where}: {line}")
    return 0


async def _migrate_postgres(url: str) -> list[str]:
    try:
        from spanflow.queue import migrate
    except ImportError:
        raise CommandError(
            "migrating PostgreSQL needs the queue extra: pip install 'spanflow[queue]'"
        ) from None
    report = await migrate(url)
    return report.lines()


async def _open(storage: SqliteStorage) -> None:
    try:
        await storage.open()
    finally:
        await storage.close()
