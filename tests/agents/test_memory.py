"""`Memory`: conversations per resource and thread, kept in every store as the same messages."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from spanflow.agents.memory import Memory, Thread
from spanflow.agents.messages import (
    AssistantMessage,
    Message,
    SystemMessage,
    ToolCall,
    ToolMessage,
    UserMessage,
)
from spanflow.errors import InvalidInputError, StorageError
from spanflow.storage import MemoryStorage
from tests.support.stores import FakeClock, StoreSpec

__all__: list[str] = []

T0 = 1_700_000_000.0

CONVERSATION: list[Message] = [
    SystemMessage("You answer about the weather."),
    UserMessage("Weather in Oslo? 🌧"),
    AssistantMessage(
        "Let me look.",
        (
            ToolCall("call-1", "weather", '{"city": "Oslo"}'),
            ToolCall("call-2", "clock", ""),
        ),
    ),
    ToolMessage("call-1", "weather", '{"temp": -3.5}'),
    ToolMessage("call-2", "clock", "clock is down", is_error=True),
    AssistantMessage("It is -3.5 °C in Oslo."),
]
"""One of each kind of message: a system prompt, a user turn, an assistant turn with two tool
calls (one with empty arguments), their results (one failed) and the final answer."""


@pytest.fixture
async def memory(store_spec: StoreSpec, clock: FakeClock) -> AsyncIterator[Memory]:
    """A memory on a new, empty store of each kind (memory, SQLite, PostgreSQL)."""
    store = store_spec.open(clock=clock)
    yield Memory(store, last_messages=3)
    await store.close()


async def test_every_kind_of_message_comes_back_as_it_was_remembered(memory: Memory) -> None:
    await memory.remember(thread="t1", resource="alice", messages=CONVERSATION)

    recalled = await memory.list_messages(thread="t1", resource="alice", limit=100)

    assert recalled == CONVERSATION


async def test_recall_gives_the_last_messages_of_the_thread_in_order(memory: Memory) -> None:
    await memory.remember(thread="t1", resource="alice", messages=CONVERSATION)

    assert await memory.recall(thread="t1", resource="alice") == CONVERSATION[-3:]
    assert await memory.recall(thread="t1", resource="alice", last_messages=1) == [
        AssistantMessage("It is -3.5 °C in Oslo.")
    ]
    assert await memory.recall(thread="t1", resource="alice", last_messages=0) == []


async def test_a_thread_not_remembered_yet_recalls_nothing(memory: Memory) -> None:
    assert await memory.recall(thread="new", resource="alice") == []
    assert await memory.get_thread("new", resource="alice") is None


async def test_remember_takes_strings_and_chat_dicts_as_agents_do(memory: Memory) -> None:
    await memory.remember(thread="t1", resource="alice", messages="Hi, I'm Alice")
    await memory.remember(
        thread="t1",
        resource="alice",
        messages=[{"role": "assistant", "content": "Hello Alice"}, "How are you?"],
    )

    assert await memory.recall(thread="t1", resource="alice") == [
        UserMessage("Hi, I'm Alice"),
        AssistantMessage("Hello Alice"),
        UserMessage("How are you?"),
    ]


async def test_a_remember_with_one_bad_message_keeps_none_of_them(memory: Memory) -> None:
    await memory.remember(thread="t1", resource="alice", messages=["kept"])

    with pytest.raises(InvalidInputError, match=r"invalid messages\[1\]: field 'role'"):
        await memory.remember(
            thread="t1", resource="alice", messages=["lost", {"role": "robot", "content": "?"}]
        )

    assert await memory.recall(thread="t1", resource="alice") == [UserMessage("kept")]


async def test_a_thread_is_scoped_to_its_resource(memory: Memory) -> None:
    await memory.remember(thread="t1", resource="alice", messages=["my secret"])
    refused = r"thread 't1' belongs to another resource than 'mallory'"

    with pytest.raises(InvalidInputError, match=refused):
        await memory.recall(thread="t1", resource="mallory")
    with pytest.raises(InvalidInputError, match=refused):
        await memory.remember(thread="t1", resource="mallory", messages=["mine now"])
    with pytest.raises(InvalidInputError, match=refused):
        await memory.list_messages(thread="t1", resource="mallory")
    with pytest.raises(InvalidInputError, match=refused):
        await memory.get_thread("t1", resource="mallory")
    with pytest.raises(InvalidInputError, match=refused):
        await memory.delete_thread("t1", resource="mallory")

    assert await memory.recall(thread="t1", resource="alice") == [UserMessage("my secret")]
    assert await memory.get_thread("t1", resource="alice") is not None
    assert await memory.list_threads(resource="mallory") == []


async def test_threads_are_listed_and_fetched_per_resource(
    memory: Memory, clock: FakeClock
) -> None:
    await memory.remember(thread="trip", resource="alice", messages=["Oslo?"])
    clock.advance(1)
    await memory.remember(thread="cooking", resource="alice", messages=["Pancakes?"])
    await memory.remember(thread="work", resource="bob", messages=["Standup?"])

    threads = await memory.list_threads(resource="alice")

    assert threads == [
        Thread("cooking", "alice", created_at=T0 + 1, updated_at=T0 + 1),
        Thread("trip", "alice", created_at=T0, updated_at=T0),
    ]
    assert [t.id for t in await memory.list_threads(resource="alice", limit=1, offset=1)] == [
        "trip"
    ]
    assert await memory.get_thread("work", resource="bob") == Thread(
        "work", "bob", created_at=T0 + 1, updated_at=T0 + 1
    )


async def test_messages_are_paged_oldest_first(memory: Memory) -> None:
    await memory.remember(thread="t1", resource="alice", messages=CONVERSATION)

    page = await memory.list_messages(thread="t1", resource="alice", limit=2, offset=1)

    assert page == CONVERSATION[1:3]


async def test_deleting_a_thread_forgets_it(memory: Memory) -> None:
    await memory.remember(thread="t1", resource="alice", messages=["hi"])

    assert await memory.delete_thread("t1", resource="alice") is True
    assert await memory.delete_thread("t1", resource="alice") is False
    assert await memory.get_thread("t1", resource="alice") is None
    assert await memory.recall(thread="t1", resource="alice") == []


async def test_deleting_a_resources_messages_forgets_only_its_own(memory: Memory) -> None:
    await memory.remember(thread="t1", resource="alice", messages=["a", "b"])
    await memory.remember(thread="t2", resource="alice", messages=["c"])
    await memory.remember(thread="t3", resource="bob", messages=["d"])

    assert await memory.delete_messages(resource="alice") == 3

    assert await memory.recall(thread="t1", resource="alice") == []
    assert await memory.recall(thread="t3", resource="bob") == [UserMessage("d")]
    assert [thread.id for thread in await memory.list_threads(resource="alice")] == ["t2", "t1"]


async def test_empty_ids_are_refused_with_the_argument_named(memory: Memory) -> None:
    with pytest.raises(InvalidInputError, match="thread must be a non-empty string; got ''"):
        await memory.remember(thread="", resource="alice", messages=["hi"])
    with pytest.raises(InvalidInputError, match="resource must be a non-empty string; got None"):
        await memory.recall(thread="t1", resource=None)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="resource must be a non-empty string"):
        await memory.delete_messages(resource="")
    with pytest.raises(InvalidInputError, match="thread must be a non-empty string; got ''"):
        await memory.get_thread("", resource="alice")
    with pytest.raises(InvalidInputError, match="resource must be a non-empty string; got ''"):
        await memory.delete_thread("t1", resource="")


def test_a_memory_needs_a_store_that_keeps_threads_and_a_sane_count() -> None:
    with pytest.raises(TypeError, match=r"Memory needs a store that keeps threads.*got dict"):
        Memory({})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="last_messages must be 0 or more; got -1"):
        Memory(MemoryStorage(), last_messages=-1)
    with pytest.raises(TypeError, match="last_messages must be an int; got True"):
        Memory(MemoryStorage(), last_messages=True)

    assert Memory(MemoryStorage()).last_messages == 20


async def test_a_stored_message_this_spanflow_cannot_read_is_a_storage_error() -> None:
    store = MemoryStorage()
    await store.append_messages(
        "t1", resource_id="alice", messages=[{"role": "narrator", "content": "Once upon"}]
    )

    with pytest.raises(StorageError, match="message 0 of thread 't1' is not a message"):
        await Memory(store).recall(thread="t1", resource="alice")
