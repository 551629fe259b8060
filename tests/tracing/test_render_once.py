"""Rendering a step's values once: the shortcuts give exactly what the slow path gives.

A traced step renders its input and output for the step span and again inside its events'
payloads. Two shortcuts spare the repeated work: a run's `RenderMemo` remembers what the
redactor found in a text it read lately, and `spliced_json` builds an event payload's JSON from
its parts. Neither may change a byte of what is exported, so each is compared here with the
path it short-cuts (`to_attribute_json` of the whole value, no memo) over many shapes:
pydantic models, dicts and lists, credential-like keys, token counts, secret-looking strings,
quotes, backslashes, control characters, non-ASCII, and values around the length limit.
"""

from __future__ import annotations

import math
from typing import Any

import pydantic
import pydantic_core
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spanflow.tracing._payload_json import _HEX, spliced_json
from spanflow.tracing._render_memo import RenderMemo
from spanflow.tracing._secret_text import TRIGGERS
from spanflow.tracing.config import NOT_RECORDED, TracingConfig
from spanflow.tracing.redaction import DEFAULT_REDACTOR, Redactor, to_attribute_json
from spanflow.usage import Usage
from spanflow.workflows.events import (
    StepOutputPayload,
    StepResultPayload,
    StepStartPayload,
    WorkflowFinishPayload,
)

REDACTORS = [
    DEFAULT_REDACTOR,
    Redactor(extra_keys=("id", "status")),  # spanflow's own keys made sensitive
    Redactor(extra_keys=("v",)),
    Redactor(scan_values=False),
    Redactor(use_default_keys=False),
    Redactor(value_patterns=("tea",)),  # walks every value: no shortcut at all
    Redactor(replacement="***"),
]
LIMITS = [0, 12, 40, 120, 400, 8192]

TRICKY_TEXT = [
    "",
    "plain",
    "sk-abcdefghijklmnopqrstuvwxyz0123",
    "Bearer abcdefghijklmnop1234",
    "Basic dXNlcjpwYXNzd29yZA==",
    "postgresql://user:hunter2@db/app",
    "AKIAABCDEFGHIJKLMNOP",
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln",
    "ghp_" + "a" * 36,
    'a "quoted" word',
    'key":"value',
    '":',
    ":starts with a colon",
    "back\\slash",
    "line\nbreak\ttab",
    "\x00\x1f\x7f",
    "ünïcødé ✓ 日本",
    "\u2028\u2029",
    "password=hunter2",
    "x" * 150,
]
KEYS = [
    "v",
    "n",
    "name",
    "item",
    "password",
    "api_key",
    "Authorization",
    "max_tokens",
    "input_tokens",
    "token_count",
    "id",
    "stepName",
    "status",
    "",
    ":",
    ",",
    'a"b',
    "back\\slash",
    "ünï",
    "1abc",
    "user id",
]
TOP_KEYS = [
    "stepName",
    "id",
    "stepCallId",
    "payload",
    "startedAt",
    "status",
    "output",
    "endedAt",
    "runId",
    "ünï",
    "password",
    "max_tokens",
    "1abc",
    "with space",
    "",
]

texts = st.sampled_from(TRICKY_TEXT) | st.text(max_size=30)
leaves = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | texts
)
json_data = st.recursive(
    leaves,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=16,
)
wires = st.dictionaries(st.sampled_from(TOP_KEYS) | st.text(max_size=6), json_data, max_size=8)
# Shaped like spanflow's payloads (its own keys around mostly harmless values), so that most
# examples take the shortcut: what the comparison is about.
harmless = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | texts,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(["v", "n", "item", "ünï", "a b", ":", "note"]), inner)
    ),
    max_leaves=8,
)
payload_wires = st.dictionaries(st.sampled_from(TOP_KEYS[:9]), harmless, min_size=1)


def slow(wire: object, redactor: Redactor, limit: int) -> str:
    """What ``spanflow.event.payload`` was before the shortcuts: the whole value, no memo."""
    config = TracingConfig(redactor=redactor, max_attribute_length=limit)
    return config.attribute_json(wire)


def fast(wire: dict[str, Any], redactor: Redactor, limit: int, memo: RenderMemo | None) -> str:
    config = TracingConfig(redactor=redactor, max_attribute_length=limit)
    return config.payload_json(wire, memo)


@pytest.fixture(autouse=True)
def _tracing_errors_are_logged(monkeypatch: pytest.MonkeyPatch) -> None:
    # Both paths must agree on unrenderable values too (lone surrogates, say): NOT_RECORDED.
    monkeypatch.delenv("SPANFLOW_RAISE_INTERNAL_ERRORS", raising=False)


# --- spliced payload JSON -------------------------------------------------------------------


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(
    wire=wires,
    redactor=st.sampled_from(REDACTORS),
    limit=st.sampled_from(LIMITS),
    warm=st.booleans(),
)
def test_a_spliced_payload_is_byte_for_byte_the_slow_rendering(
    wire: dict[str, Any], redactor: Redactor, limit: int, warm: bool
) -> None:
    memo = RenderMemo(redactor)
    if warm:  # the pieces were rendered moments ago, for span attributes
        for value in wire.values():
            TracingConfig(redactor=redactor, max_attribute_length=limit).attribute_json(value, memo)

    assert fast(wire, redactor, limit, memo) == slow(wire, redactor, limit)
    assert fast(wire, redactor, limit, None) == slow(wire, redactor, limit)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(wire=payload_wires, redactor=st.sampled_from(REDACTORS), limit=st.sampled_from([120, 8192]))
def test_a_payload_shaped_wire_renders_as_before(
    wire: dict[str, Any], redactor: Redactor, limit: int
) -> None:
    memo = RenderMemo(redactor)

    assert fast(wire, redactor, limit, memo) == slow(wire, redactor, limit)
    assert fast(wire, redactor, limit, memo) == slow(wire, redactor, limit)  # memo warm


class Value(pydantic.BaseModel):
    v: int


class Order(pydantic.BaseModel):
    item: str
    quantity: int
    api_key: str = "sk-abcdefghijklmnopqrstuvwxyz0123"


class Usageish(pydantic.BaseModel):
    max_tokens: int = 7
    note: str = "ok"


class Lenient(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(ser_json_inf_nan="null")
    ratio: float


MODELS: list[Any] = [
    Value(v=3),
    Order(item="tea", quantity=4),
    Order(item='tea "green"\n', quantity=1, api_key="none"),
    Usageish(),
    Usageish(max_tokens=1, note="Bearer abcdefghijklmnop1234"),
    Lenient(ratio=math.inf),
    {"n": 1},
    {"password": "hunter2"},
    {"text": "x" * 500},
    ["a", {"token": "t"}],
    "ünïcødé",
    42,
    None,
]


@pytest.mark.parametrize("redactor", REDACTORS, ids=repr)
@pytest.mark.parametrize("limit", [40, 200, 8192])
@pytest.mark.parametrize("value", MODELS, ids=repr)
def test_step_event_payloads_render_as_before(value: Any, limit: int, redactor: Redactor) -> None:
    start = StepStartPayload("s1", "s1", "0b7d3f0e-5b8e-4a8e-9d0e-3f1c2b4a5d6e", value, 1_700_000)
    result = StepResultPayload(
        "s1", "s1", "0b7d3f0e-5b8e-4a8e-9d0e-3f1c2b4a5d6e", "success", value, 1, 2, output=value
    )
    output = StepOutputPayload("s1", value, "run-1")
    config = TracingConfig(redactor=redactor, max_attribute_length=limit)
    memo = config.render_memo()

    for payload in (start, result, output):
        wire = payload.to_dict()
        config.attribute_json(value, memo)  # the span attribute, rendered first
        assert config.payload_json(wire, memo) == slow(wire, redactor, limit)


def test_a_plain_step_start_takes_the_shortcut() -> None:
    wire = StepStartPayload("load", "load", "call-1", {"n": 1}, 1_700_000).to_dict()

    spliced = spliced_json(wire, DEFAULT_REDACTOR, 8192, RenderMemo(DEFAULT_REDACTOR))

    assert spliced == (
        '{"stepName":"load","id":"load","stepCallId":"call-1","payload":{"n":1},'
        '"startedAt":1700000,"status":"running"}'
    )


@pytest.mark.parametrize(
    ("wire", "why"),
    [
        ({"payload": {"password": "x"}}, "a sensitive key inside"),
        ({"payload": {"max_tokens": 3}}, "a token count inside"),
        ({"password": "x"}, "a sensitive key of its own"),
        ({"with space": 1}, "a key that is not an identifier"),
        ({"payload": "sk-abcdefghijklmnopqrstuvwxyz0123"}, "a secret-looking value"),
        ({"payload": "x" * 9000}, "longer than the limit"),
        ({"payload": (1, 2)}, "not JSON data"),
    ],
)
def test_the_shortcut_steps_aside_when_it_cannot_show_equality(
    wire: dict[str, Any], why: str
) -> None:
    assert spliced_json(wire, DEFAULT_REDACTOR, 8192, None) is None, why


def test_a_redactor_that_walks_every_value_never_takes_the_shortcut() -> None:
    walking = Redactor(value_patterns=("secret-\\d+",))

    assert spliced_json({"id": "a"}, walking, 8192, None) is None


def test_a_finish_payload_with_token_counts_renders_as_before() -> None:
    wire = WorkflowFinishPayload("success", Usage(input_tokens=3), {}, {"n": 1}).to_dict()

    assert fast(wire, DEFAULT_REDACTOR, 8192, None) == slow(wire, DEFAULT_REDACTOR, 8192)


# --- the run's memo -------------------------------------------------------------------------


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(
    values=st.lists(json_data, min_size=1, max_size=6),
    redactor=st.sampled_from(REDACTORS),
    limit=st.sampled_from(LIMITS),
)
def test_an_attribute_rendered_with_the_memo_is_the_one_rendered_without(
    values: list[Any], redactor: Redactor, limit: int
) -> None:
    memo = RenderMemo(redactor)
    for value in values * 2:  # every value twice: the second time from the memo
        with_memo = to_attribute_json(value, redactor=redactor, limit=limit, memo=memo)
        assert with_memo == to_attribute_json(value, redactor=redactor, limit=limit)


def test_a_value_changed_in_place_is_read_again() -> None:
    memo = RenderMemo(DEFAULT_REDACTOR)
    value: dict[str, Any] = {"note": "fine"}
    assert to_attribute_json(value, memo=memo) == '{"note":"fine"}'

    value["password"] = "hunter2"

    assert to_attribute_json(value, memo=memo) == '{"note":"fine","password":"[REDACTED]"}'


def test_a_memo_of_another_redactor_is_ignored() -> None:
    lenient = Redactor(use_default_keys=False)
    memo = RenderMemo(lenient)
    assert to_attribute_json({"password": "x"}, redactor=lenient, memo=memo) == '{"password":"x"}'

    shown = to_attribute_json({"password": "x"}, redactor=DEFAULT_REDACTOR, memo=memo)

    assert shown == '{"password":"[REDACTED]"}'


def test_the_memo_stays_small() -> None:
    memo = RenderMemo(DEFAULT_REDACTOR)

    for n in range(10_000):
        to_attribute_json({"n": n, "pad": "x" * 100}, memo=memo)

    assert len(memo._facts) <= 256


def test_an_unrenderable_payload_is_not_recorded_either_way() -> None:
    wire = {"payload": "\ud800"}  # a lone surrogate: no JSON for it

    assert fast(wire, DEFAULT_REDACTOR, 8192, None) == slow(wire, DEFAULT_REDACTOR, 8192)
    assert slow(wire, DEFAULT_REDACTOR, 8192) in (NOT_RECORDED, '{"payload":"\ud800"}')


# --- what the proof in _payload_json assumes of the triggers ---------------------------------


def test_no_trigger_can_straddle_two_parts_of_a_payload() -> None:
    for trigger in TRIGGERS:
        assert not set(trigger) & set('{},"'), trigger
        assert ":" not in trigger or trigger == "://", trigger


def test_numbers_null_and_booleans_hold_no_trigger() -> None:
    rendered = ["null", "true", "false", "-0123456789", "1.5e+16", "NaN", "Infinity", "-Infinity"]
    rendered += [TracingConfig().attribute_json(x) for x in (math.nan, -math.inf, 1e300, -2.5e-9)]

    assert not [(t, text) for t in TRIGGERS for text in rendered if t in text]


def test_a_call_id_cannot_hold_a_trigger() -> None:
    assert all(set(trigger) - set(_HEX) for trigger in TRIGGERS)


def test_a_payload_surely_over_the_limit_is_left_to_the_bounded_walk() -> None:
    records = [{"id": n, "name": f"record {n}"} for n in range(20_000)]
    wire = {"stepName": "load", "id": "load", "output": records, "status": "success"}

    # Not rendered whole here: the walk that follows reads only as far as the limit reaches.
    assert spliced_json(wire, DEFAULT_REDACTOR, 8192, None) is None
    assert len(to_attribute_json(wire, limit=8192)) == 8192


@pytest.mark.parametrize("depth", [3, 10, 40])
def test_nested_lists_that_fit_the_limit_are_rendered_whole(depth: int) -> None:
    value: Any = []
    for _ in range(depth):
        value = [value]
    text = "[" * (depth + 1) + "]" * (depth + 1)

    # The size probe's lower bound holds for lists of lists: nothing is cut that fits.
    assert to_attribute_json(value, limit=len(text)) == text
    assert to_attribute_json({"tree": value}, limit=len(text) + 9) == '{"tree":' + text + "}"


def test_a_key_that_only_compares_equal_to_a_known_key_is_not_spliced() -> None:
    class LooksLikeId(str):
        pass

    spliced_json({"id": "warm"}, DEFAULT_REDACTOR, 8192, None)  # "id" is now a known key

    assert spliced_json({LooksLikeId("id"): "x"}, DEFAULT_REDACTOR, 8192, None) is None


@pytest.mark.parametrize("entries", [1, 2, 16, 17])
def test_flat_dicts_and_models_that_fit_the_limit_are_rendered_whole(entries: int) -> None:
    # Every kind of scalar, the shortest keys and strings: where the size probe's lower bound
    # comes closest to the rendering (one-character keys, empty strings).
    scalars: list[Any] = ["", 0, 0.5, True, None, "x"]
    flat = {chr(97 + n % 26) + str(n // 26 or ""): scalars[n % 6] for n in range(entries)}
    text = pydantic_core.to_json(flat).decode()
    fields: dict[str, Any] = {key: (Any, ...) for key in flat}
    model = pydantic.create_model("Flat", **fields)(**flat)

    assert to_attribute_json(flat, limit=len(text)) == text
    assert to_attribute_json(model, limit=len(text)) == text
    assert to_attribute_json(flat, limit=len(text) - 1) != text
