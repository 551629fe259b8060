"""Agent memory in the stores (`ThreadStore`): threads per resource and their messages, alike in
memory, SQLite and PostgreSQL; and the upgrade of older databases to hold them."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import psycopg
import pytest

from spanflow.errors import InvalidInputError, StorageError
from spanflow.storage import (
    MemoryStorage,
    PostgresStorage,
    SqliteStorage,
    StoredMessage,
    StoredRun,
    StoredThread,
    ThreadStore,
)

from .conftest import FakeClock, StoreSpec
from .schema_v4 import postgres_v4, sqlite_v4

__all__: list[str] = []

T0 = 1_700_000_000.0
"""The fake clock's start."""

Store = MemoryStorage | SqliteStorage | PostgresStorage


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": text}


def texts(messages: list[StoredMessage]) -> list[str]:
    return [message.content["content"] for message in messages]


@pytest.fixture
async def store(store_spec: StoreSpec, clock: FakeClock) -> Any:
    """A new, empty store of each kind (memory, SQLite, PostgreSQL), on the fake clock."""
    opened = store_spec.open(clock=clock)
    yield opened
    await opened.close()


def test_every_store_keeps_threads() -> None:
    assert isinstance(MemoryStorage(), ThreadStore)
    assert isinstance(SqliteStorage(":memory:"), ThreadStore)


# -- appending and reading ----------------------------------------------------------------------


async def test_a_first_append_creates_the_thread_and_numbers_its_messages_from_0(
    store: Store,
) -> None:
    stored = await store.append_messages(
        "t1", resource_id="alice", messages=[user("hi"), {"role": "assistant", "content": "hey"}]
    )

    assert stored == [
        StoredMessage("t1", 0, "alice", "user", {"role": "user", "content": "hi"}, T0),
        StoredMessage("t1", 1, "alice", "assistant", {"role": "assistant", "content": "hey"}, T0),
    ]
    assert await store.get_thread("t1", resource_id="alice") == StoredThread(
        "t1", "alice", title=None, metadata={}, created_at=T0, updated_at=T0
    )


async def test_appends_number_on_and_the_last_messages_come_in_thread_order(
    store: Store, clock: FakeClock
) -> None:
    for n in range(5):
        clock.advance(1)
        await store.append_messages("t1", resource_id="alice", messages=[user(f"m{n}")])

    last = await store.last_messages("t1", limit=3)

    assert [(message.seq, message.content["content"]) for message in last] == [
        (2, "m2"),
        (3, "m3"),
        (4, "m4"),
    ]
    thread = await store.get_thread("t1", resource_id="alice")
    assert thread is not None
    assert (thread.created_at, thread.updated_at) == (T0 + 1, T0 + 5)


async def test_asking_for_more_messages_than_there_are_gives_them_all_and_0_gives_none(
    store: Store,
) -> None:
    await store.append_messages("t1", resource_id="alice", messages=[user("a"), user("b")])

    assert texts(await store.last_messages("t1", limit=10)) == ["a", "b"]
    assert await store.last_messages("t1", limit=0) == []


async def test_an_unknown_thread_reads_as_empty(store: Store) -> None:
    assert await store.get_thread("nope", resource_id="alice") is None
    assert await store.last_messages("nope", resource_id="alice", limit=5) == []
    page = await store.list_messages("nope", resource_id="alice")
    assert (page.messages, page.total) == ([], 0)


async def test_messages_are_paged_in_thread_order_with_the_total(store: Store) -> None:
    await store.append_messages(
        "t1", resource_id="alice", messages=[user(f"m{n}") for n in range(7)]
    )

    first = await store.list_messages("t1", resource_id="alice", limit=3)
    third = await store.list_messages("t1", limit=3, offset=6)

    assert (texts(first.messages), first.total, first.limit, first.offset) == (
        ["m0", "m1", "m2"],
        7,
        3,
        0,
    )
    assert (texts(third.messages), third.total) == (["m6"], 7)


MESSAGE_CONTENTS: list[dict[str, Any]] = [
    {"role": "user", "content": "¿Nombre? 名前は? 👋🏽 e\u0301 a\u0000b \ud800 \"'\\\n"},
    {
        "role": "assistant",
        "content": "",
        "tool_calls": [{"id": "call-1", "name": "weather", "arguments": '{"city": "Oslo"}'}],
    },
    {
        "role": "tool",
        "tool_call_id": "call-1",
        "tool_name": "weather",
        "content": '{"temp": -3.5}',
        "is_error": False,
        "extra": {"numbers": [0, 2**63 + 1, 0.1, 1e300], "none": None, "empty": {}},
    },
]


async def test_a_message_comes_back_as_the_json_object_appended(store: Store) -> None:
    await store.append_messages("t1", resource_id="alice", messages=MESSAGE_CONTENTS)

    page = await store.list_messages("t1")

    assert [message.content for message in page.messages] == MESSAGE_CONTENTS
    assert [message.role for message in page.messages] == ["user", "assistant", "tool"]
    assert list(page.messages[2].content) == list(MESSAGE_CONTENTS[2])


async def test_what_a_reader_does_with_a_message_does_not_change_the_stored_one(
    store: Store,
) -> None:
    appended = {"role": "user", "content": "hi", "parts": [{"text": "hi"}]}
    await store.append_messages("t1", resource_id="alice", messages=[appended])
    appended["parts"].append({"text": "later"})  # type: ignore[attr-defined]

    read = await store.last_messages("t1", limit=1)
    read[0].content["parts"].append({"text": "mine"})

    again = await store.last_messages("t1", limit=1)
    assert again[0].content == {"role": "user", "content": "hi", "parts": [{"text": "hi"}]}


async def test_an_empty_append_writes_nothing(store: Store) -> None:
    assert await store.append_messages("t1", resource_id="alice", messages=[]) == []

    assert await store.get_thread("t1", resource_id="alice") is None


# -- all or nothing -----------------------------------------------------------------------------


async def test_an_append_whose_second_message_cannot_be_encoded_writes_nothing(
    store: Store, clock: FakeClock
) -> None:
    await store.append_messages("t1", resource_id="alice", messages=[user("kept")])
    clock.advance(10)

    with pytest.raises(InvalidInputError, match=r"messages\[1\] for thread 't1' is not JSON data"):
        await store.append_messages(
            "t1", resource_id="alice", messages=[user("lost"), {"role": "user", "content": {1j}}]
        )
    with pytest.raises(InvalidInputError, match=r"messages\[0\] for thread 't2' is not JSON"):
        await store.append_messages(
            "t2", resource_id="alice", messages=[{"role": "user", "content": float("nan")}]
        )

    assert texts((await store.list_messages("t1")).messages) == ["kept"]
    thread = await store.get_thread("t1", resource_id="alice")
    assert thread is not None
    assert thread.updated_at == T0
    assert await store.get_thread("t2", resource_id="alice") is None


@pytest.mark.parametrize(
    ("messages", "problem"),
    [
        ("hello", r"messages must be a list of message dicts; got str"),
        ({"role": "user", "content": "hi"}, r"messages must be a list of message dicts; got dict"),
        ([user("ok"), "hello"], r"messages\[1\] for thread 't1' must be a dict; got str"),
        ([{"content": "hi"}], r"messages\[0\] for thread 't1' needs a 'role' string; got None"),
        ([{"role": "", "content": "hi"}], r"messages\[0\] .* needs a 'role' string; got ''"),
    ],
)
async def test_messages_that_are_not_role_dicts_are_refused_naming_the_one(
    store: Store, messages: Any, problem: str
) -> None:
    with pytest.raises(InvalidInputError, match=problem):
        await store.append_messages("t1", resource_id="alice", messages=messages)

    assert await store.get_thread("t1", resource_id="alice") is None


async def test_appends_to_one_thread_from_two_stores_at_once_all_land_in_turn(
    shared_store_spec: StoreSpec,
) -> None:
    first, second = shared_store_spec.open(), shared_store_spec.open()
    try:
        await first.open()  # (a new SQLite file: set up by one, then shared)
        await second.open()
        await asyncio.gather(
            *(
                store.append_messages(
                    "t1", resource_id="alice", messages=[user(f"{name}{n}a"), user(f"{name}{n}b")]
                )
                for n in range(10)
                for name, store in (("x", first), ("y", second))
            )
        )
        page = await first.list_messages("t1", limit=100)
    finally:
        await first.close()
        await second.close()

    assert [message.seq for message in page.messages] == list(range(40))
    found = texts(page.messages)
    # Each append's two messages are stored next to each other.
    assert all(found[i][:-1] == found[i + 1][:-1] for i in range(0, 40, 2))
    assert sorted(found) == sorted(f"{x}{n}{ab}" for x in "xy" for n in range(10) for ab in "ab")


# -- scoped by resource -------------------------------------------------------------------------


async def test_a_thread_id_used_with_another_resource_is_refused_and_nothing_written(
    store: Store,
) -> None:
    await store.append_messages("t1", resource_id="alice", messages=[user("mine")])
    refused = r"thread 't1' belongs to another resource than 'mallory'"

    with pytest.raises(InvalidInputError, match=refused):
        await store.append_messages("t1", resource_id="mallory", messages=[user("theirs")])
    with pytest.raises(InvalidInputError, match=refused):
        await store.save_thread(StoredThread("t1", "mallory", title="taken"))
    with pytest.raises(InvalidInputError, match=refused):
        await store.last_messages("t1", resource_id="mallory", limit=5)
    with pytest.raises(InvalidInputError, match=refused):
        await store.last_messages("t1", resource_id="mallory", limit=0)
    with pytest.raises(InvalidInputError, match=refused):
        await store.list_messages("t1", resource_id="mallory")

    assert texts(await store.last_messages("t1", resource_id="alice", limit=5)) == ["mine"]
    thread = await store.get_thread("t1", resource_id="alice")
    assert thread is not None
    assert (thread.resource_id, thread.title) == ("alice", None)


async def test_a_thread_id_alone_neither_reads_nor_deletes_another_resources_thread(
    store: Store,
) -> None:
    await store.append_messages("t1", resource_id="alice", messages=[user("mine")])

    with pytest.raises(InvalidInputError) as read:
        await store.get_thread("t1", resource_id="mallory")
    with pytest.raises(InvalidInputError) as deleted:
        await store.delete_thread("t1", resource_id="mallory")

    for refused in (read, deleted):
        assert "thread 't1' belongs to another resource than 'mallory'" in str(refused.value)
        assert "alice" not in str(refused.value)  # the owner is not told to whoever asks
    assert texts(await store.last_messages("t1", resource_id="alice", limit=5)) == ["mine"]
    thread = await store.get_thread("t1", resource_id="alice")
    assert thread is not None
    assert thread.resource_id == "alice"


async def test_a_thread_not_stored_is_none_and_not_deleted_for_any_resource(store: Store) -> None:
    assert await store.get_thread("nope", resource_id="mallory") is None
    assert await store.delete_thread("nope", resource_id="mallory") is False


async def test_deletes_by_another_resource_racing_appends_remove_nothing(
    shared_store_spec: StoreSpec,
) -> None:
    owner, other = shared_store_spec.open(), shared_store_spec.open()
    try:
        await owner.open()  # (a new SQLite file: set up by one, then shared)
        await other.open()
        await owner.append_messages("t1", resource_id="alice", messages=[user("m0")])

        async def append(n: int) -> bool:
            await owner.append_messages("t1", resource_id="alice", messages=[user(f"m{n}")])
            return True

        async def delete() -> bool:
            return await other.delete_thread("t1", resource_id="mallory")

        outcomes = await asyncio.gather(
            *(step for n in range(1, 11) for step in (append(n), delete())),
            return_exceptions=True,
        )
        page = await owner.list_messages("t1", resource_id="alice", limit=100)
    finally:
        await owner.close()
        await other.close()

    refusals = [outcome for outcome in outcomes if isinstance(outcome, InvalidInputError)]
    assert len(refusals) == 10
    assert outcomes.count(True) == 10
    assert sorted(texts(page.messages)) == sorted(f"m{n}" for n in range(11))


async def test_a_saved_thread_is_created_then_updated_keeping_its_creation_time(
    store: Store, clock: FakeClock
) -> None:
    thread = StoredThread("t1", "alice", title="Trip", metadata={"lang": "en"})
    await store.save_thread(thread)
    clock.advance(5)
    renamed = StoredThread("t1", "alice", title="Trip to Oslo", metadata={"lang": "nb"})
    await store.save_thread(renamed)

    assert (thread.created_at, thread.updated_at) == (T0, T0)
    assert (renamed.created_at, renamed.updated_at) == (T0, T0 + 5)
    assert await store.get_thread("t1", resource_id="alice") == StoredThread(
        "t1", "alice", "Trip to Oslo", {"lang": "nb"}, created_at=T0, updated_at=T0 + 5
    )


async def test_a_thread_whose_metadata_is_not_json_is_refused(store: Store) -> None:
    with pytest.raises(InvalidInputError, match=r"thread 't1': its metadata is not JSON data"):
        await store.save_thread(StoredThread("t1", "alice", metadata={"when": object()}))

    assert await store.get_thread("t1", resource_id="alice") is None


async def test_threads_are_listed_per_resource_most_recently_updated_first(
    store: Store, clock: FakeClock
) -> None:
    for thread_id in ("a", "b", "c"):
        clock.advance(1)
        await store.append_messages(thread_id, resource_id="alice", messages=[user("hi")])
    await store.append_messages("other", resource_id="bob", messages=[user("hi")])
    clock.advance(1)
    await store.append_messages("a", resource_id="alice", messages=[user("again")])

    first = await store.list_threads(resource_id="alice", limit=2)
    second = await store.list_threads(resource_id="alice", limit=2, offset=2)

    assert [thread.thread_id for thread in first.threads] == ["a", "c"]
    assert (first.total, first.limit, first.offset) == (3, 2, 0)
    assert [thread.thread_id for thread in second.threads] == ["b"]
    assert [t.thread_id for t in (await store.list_threads(resource_id="bob")).threads] == ["other"]
    assert (await store.list_threads(resource_id="nobody")).total == 0


# -- deleting -----------------------------------------------------------------------------------


async def test_deleting_a_thread_removes_its_messages_and_nothing_else(store: Store) -> None:
    await store.append_messages("t1", resource_id="alice", messages=[user("a"), user("b")])
    await store.append_messages("t2", resource_id="alice", messages=[user("c")])

    assert await store.delete_thread("t1", resource_id="alice") is True
    assert await store.delete_thread("t1", resource_id="alice") is False

    assert await store.get_thread("t1", resource_id="alice") is None
    assert await store.last_messages("t1", limit=5) == []
    assert texts(await store.last_messages("t2", limit=5)) == ["c"]
    # A new thread of that id starts from 0 again, for any resource.
    again = await store.append_messages("t1", resource_id="bob", messages=[user("new")])
    assert [message.seq for message in again] == [0]


async def test_deleting_a_resources_messages_keeps_its_threads_and_other_resources(
    store: Store,
) -> None:
    await store.append_messages("t1", resource_id="alice", messages=[user("a"), user("b")])
    await store.append_messages("t2", resource_id="alice", messages=[user("c")])
    await store.append_messages("t3", resource_id="bob", messages=[user("d")])

    deleted = await store.delete_messages(resource_id="alice")

    assert deleted == 3
    assert (await store.list_threads(resource_id="alice")).total == 2
    assert await store.last_messages("t1", limit=5) == []
    assert await store.last_messages("t2", limit=5) == []
    assert texts(await store.last_messages("t3", limit=5)) == ["d"]
    assert await store.delete_messages(resource_id="alice") == 0


# -- arguments ----------------------------------------------------------------------------------


async def test_empty_or_missing_ids_are_refused_naming_the_argument(store: Store) -> None:
    with pytest.raises(InvalidInputError, match="thread_id must be a non-empty string; got ''"):
        await store.append_messages("", resource_id="alice", messages=[user("hi")])
    with pytest.raises(InvalidInputError, match="resource_id must be a non-empty string"):
        await store.append_messages("t1", resource_id=None, messages=[user("hi")])  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="resource_id must be a non-empty string"):
        await store.list_threads(resource_id="")
    with pytest.raises(InvalidInputError, match="resource_id must be a non-empty string"):
        await store.delete_messages(resource_id="")
    with pytest.raises(InvalidInputError, match=r"thread\.resource_id of thread 't1'"):
        await store.save_thread(StoredThread("t1", ""))
    with pytest.raises(InvalidInputError, match="thread_id must be a non-empty string"):
        await store.get_thread("", resource_id="alice")
    with pytest.raises(InvalidInputError, match="resource_id must be a non-empty string"):
        await store.get_thread("t1", resource_id="")
    with pytest.raises(InvalidInputError, match="resource_id must be a non-empty string"):
        await store.delete_thread("t1", resource_id=None)  # type: ignore[arg-type]


async def test_limits_and_offsets_out_of_range_are_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="limit must be 0 or more; got -1"):
        await store.last_messages("t1", limit=-1)
    with pytest.raises(TypeError, match="limit must be an int"):
        await store.last_messages("t1", limit=2.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="limit must be between 1 and 1000"):
        await store.list_messages("t1", limit=0)
    with pytest.raises(ValueError, match="offset must be 0 or more"):
        await store.list_threads(resource_id="alice", offset=-1)


# -- older databases ----------------------------------------------------------------------------


def _sqlite(path: Path, *statements: str) -> list[Any]:
    connection = sqlite3.connect(path)
    try:
        rows: list[Any] = []
        for statement in statements:
            rows = connection.execute(statement).fetchall()
        connection.commit()
        return rows
    finally:
        connection.close()


def _sqlite_schema(path: Path) -> list[Any]:
    return _sqlite(
        path,
        "SELECT type, name, sql FROM sqlite_master "
        "WHERE name LIKE 'spanflow%' AND sql IS NOT NULL ORDER BY name",
    )


def _old_run(false: str) -> str:
    """The insert of run ``old-run`` into the runs table of version 4 (`false`: the dialect's)."""
    return (
        "INSERT INTO spanflow_runs VALUES ('old-run', 'onboarding', 'user-7', 'suspended', "
        f"'{{\"steps\": {{}}}}', 10.5, 11.5, NULL, 0, {false})"
    )


_OLD_EVENT = "INSERT INTO spanflow_events VALUES ('old-run', 0, '{\"type\": \"start\"}', 10.5)"
_EXPECTED_RUN = StoredRun(
    "old-run", "onboarding", "suspended", {"steps": {}}, "user-7", created_at=10.5, updated_at=11.5
)


async def test_a_version_4_sqlite_file_is_upgraded_to_5_keeping_its_runs(tmp_path: Path) -> None:
    path, new = tmp_path / "v4.db", tmp_path / "new.db"
    _sqlite(path, *sqlite_v4(), _old_run("0"), _OLD_EVENT)

    async with SqliteStorage(path) as store, SqliteStorage(new):
        run = await store.get_run("old-run")
        events = await store.read_events("old-run")
        await store.append_messages("t1", resource_id="alice", messages=[user("hi")])
        last = await store.last_messages("t1", limit=1)

    assert run == _EXPECTED_RUN
    assert [event.event for event in events] == [{"type": "start"}]
    assert texts(last) == ["hi"]
    assert _sqlite(path, "SELECT value FROM spanflow_meta") == [("5",)]
    assert _sqlite_schema(path) == _sqlite_schema(new)
    names = {name for _, name, _ in _sqlite_schema(new)}
    assert {"spanflow_threads_by_resource", "spanflow_messages_by_resource"} <= names


async def test_an_upgrade_from_version_4_that_fails_leaves_the_file_as_it_was(
    tmp_path: Path,
) -> None:
    path = tmp_path / "v4.db"
    _sqlite(path, *sqlite_v4(), _old_run("0"))
    before = _sqlite_schema(path)
    _sqlite(
        path,
        "CREATE TRIGGER no_upgrades BEFORE UPDATE ON spanflow_meta "
        "BEGIN SELECT RAISE(ABORT, 'no upgrades today'); END",
    )

    with pytest.raises(StorageError, match="no upgrades today"):
        async with SqliteStorage(path):
            pass

    assert _sqlite(path, "SELECT value FROM spanflow_meta") == [("4",)]
    assert [row for row in _sqlite_schema(path) if row[1] != "no_upgrades"] == before


async def test_a_read_only_store_on_a_version_4_file_reads_no_threads_and_refuses_writes(
    tmp_path: Path,
) -> None:
    path = tmp_path / "v4.db"
    _sqlite(path, *sqlite_v4(), _old_run("0"))
    before = path.read_bytes()
    too_old = r"schema version 4, which has no thread or message tables.*opened read-only"

    async with SqliteStorage(path, read_only=True) as reader:
        run = await reader.get_run("old-run")
        thread = await reader.get_thread("t1", resource_id="alice")
        threads = await reader.list_threads(resource_id="alice")
        last = await reader.last_messages("t1", resource_id="alice", limit=5)
        page = await reader.list_messages("t1")
        with pytest.raises(StorageError, match=too_old):
            await reader.append_messages("t1", resource_id="alice", messages=[user("hi")])
        with pytest.raises(StorageError, match=too_old):
            await reader.save_thread(StoredThread("t1", "alice"))
        with pytest.raises(StorageError, match=too_old):
            await reader.delete_thread("t1", resource_id="alice")
        with pytest.raises(StorageError, match=too_old):
            await reader.delete_messages(resource_id="alice")

    assert run == _EXPECTED_RUN
    assert (thread, threads.total, last, page.total) == (None, 0, [], 0)
    assert path.read_bytes() == before


async def test_a_read_only_store_reads_the_threads_another_store_wrote(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    async with SqliteStorage(path) as writer:
        await writer.append_messages("t1", resource_id="alice", messages=[user("hi")])

    async with SqliteStorage(path, read_only=True) as reader:
        last = await reader.last_messages("t1", resource_id="alice", limit=5)
        with pytest.raises(StorageError, match="was opened read-only"):
            await reader.append_messages("t1", resource_id="alice", messages=[user("more")])

    assert texts(last) == ["hi"]


async def test_reading_the_last_messages_walks_the_thread_key_backwards(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    async with SqliteStorage(path):
        pass

    steps = _sqlite(
        path,
        "EXPLAIN QUERY PLAN SELECT * FROM spanflow_messages WHERE thread_id = 't1' "
        "ORDER BY seq DESC LIMIT 20",
    )

    assert [step[-1] for step in steps] == [
        "SEARCH spanflow_messages USING INDEX sqlite_autoindex_spanflow_messages_1 (thread_id=?)"
    ]


async def _pg(spec: StoreSpec, *statements: str) -> list[Any]:
    assert spec.dsn is not None
    async with await psycopg.AsyncConnection.connect(spec.dsn, autocommit=True) as connection:
        await connection.execute(f'SET search_path TO "{spec.schema}"')
        rows: list[Any] = []
        for statement in statements:
            cursor = await connection.execute(statement)
            rows = await cursor.fetchall() if cursor.description else []
        return rows


async def _pg_layout(spec: StoreSpec) -> list[Any]:
    """Every column and index of spanflow's tables in the spec's schema."""
    columns = await _pg(
        spec,
        "SELECT table_name, column_name, data_type, column_default, is_nullable "
        "FROM information_schema.columns WHERE table_schema = current_schema() "
        "ORDER BY table_name, ordinal_position",
    )
    indexes = await _pg(
        spec,
        "SELECT indexname, replace(indexdef, current_schema() || '.', '') FROM pg_indexes "
        "WHERE schemaname = current_schema() ORDER BY indexname",
    )
    return [*columns, *indexes]


@pytest.mark.postgres
async def test_a_version_4_postgres_schema_is_upgraded_to_5_keeping_its_runs(
    postgres_spec: StoreSpec, postgres_dsn: str
) -> None:
    assert postgres_spec.schema is not None
    await _pg(postgres_spec, *postgres_v4(postgres_spec.schema), _old_run("false"))
    await _pg(postgres_spec, _OLD_EVENT)
    fresh = StoreSpec("postgres", dsn=postgres_dsn, schema=f"{postgres_spec.schema}_new")

    store, other = postgres_spec.open(), fresh.open()
    try:
        run = await store.get_run("old-run")
        events = await store.read_events("old-run")
        await store.append_messages("t1", resource_id="alice", messages=[user("hi")])
        last = await store.last_messages("t1", limit=1)
        await other.open()
    finally:
        await store.close()
        await other.close()

    assert run == _EXPECTED_RUN
    assert [event.event for event in events] == [{"type": "start"}]
    assert texts(last) == ["hi"]
    assert await _pg(postgres_spec, "SELECT value FROM spanflow_meta") == [("5",)]
    assert await _pg_layout(postgres_spec) == await _pg_layout(fresh)
    assert ("spanflow_messages", "content", "json", None, "NO") in await _pg_layout(fresh)


@pytest.mark.postgres
async def test_a_read_only_store_on_a_version_4_postgres_schema_reads_no_threads(
    postgres_spec: StoreSpec,
) -> None:
    assert postgres_spec.schema is not None
    await _pg(postgres_spec, *postgres_v4(postgres_spec.schema), _old_run("false"))
    before = await _pg_layout(postgres_spec)
    too_old = r"schema version 4, which has no thread or message tables.*opened read-only"

    reader = postgres_spec.open(read_only=True)
    try:
        run = await reader.get_run("old-run")
        thread = await reader.get_thread("t1", resource_id="alice")
        threads = await reader.list_threads(resource_id="alice")
        last = await reader.last_messages("t1", limit=5)
        page = await reader.list_messages("t1", resource_id="alice")
        with pytest.raises(StorageError, match=too_old):
            await reader.append_messages("t1", resource_id="alice", messages=[user("hi")])
        with pytest.raises(StorageError, match=too_old):
            await reader.delete_thread("t1", resource_id="alice")
    finally:
        await reader.close()

    assert run == _EXPECTED_RUN
    assert (thread, threads.total, last, page.total) == (None, 0, [], 0)
    assert await _pg_layout(postgres_spec) == before
