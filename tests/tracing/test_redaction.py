"""Redaction of credential-like keys, truncation with a marker, and attribute JSON."""

from __future__ import annotations

import datetime
import enum
import json
from dataclasses import dataclass

import pydantic
import pydantic_core
import pytest
from hypothesis import given
from hypothesis import strategies as st

from spanflow.tracing.config import TracingConfig
from spanflow.tracing.redaction import (
    _JSON_KEY,
    DEFAULT_MAX_ATTRIBUTE_LENGTH,
    DEFAULT_REDACTOR,
    REDACTED,
    Redactor,
    _json_keys,
    strip_credentials,
    to_attribute_json,
    truncate,
)
from spanflow.workflows.events import StepResultPayload


class Login(pydantic.BaseModel):
    user: str
    password: str


@dataclass
class Client:
    name: str
    client_secret: str


class Level(enum.Enum):
    HIGH = "high"


# --- which keys are sensitive -----------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    [
        "password",
        "PASSWORD",
        "user_password",
        "token",
        "access_token",
        "accessToken",
        "refresh_token",
        "csrf-token",
        "secret",
        "api_key",
        "API-Key",
        "apiKey",
        "x-api-key",
        "APIKey",
        "Authorization",
        "bearer",
        "jwt",
        "jwtToken",
        "credentials",
        "client_secret",
        "ClientSecret",
        "private_key",
        "privateKey",
        "refresh",
        "ssn",
        "user_ssn",
        "userSSN",
        "SSNLast4",
        "cookie",
        "Set-Cookie",
        "session",
        "session_id",
    ],
)
def test_credential_like_keys_are_sensitive_in_any_case_or_separator_style(key: str) -> None:
    assert DEFAULT_REDACTOR.is_sensitive(key)


@pytest.mark.parametrize(
    "key",
    [
        "tokens",
        "input_tokens",
        "output_tokens",
        "max_tokens",
        "prompt_tokens",
        "completion_tokens_details",
        "tokens_used",
        "totalTokens",
        "token_count",
        "tokenCount",
        "tokenizer",
        "username",
        "className",
        "business_name",
        "address_number",
        "model",
    ],
)
def test_token_counts_and_look_alikes_are_not_sensitive(key: str) -> None:
    assert not DEFAULT_REDACTOR.is_sensitive(key)


@pytest.mark.parametrize("key", ["access_tokens", "api_tokens", "id_tokens", "auth_token_count"])
def test_a_credential_word_before_tokens_keeps_the_key_sensitive(key: str) -> None:
    assert DEFAULT_REDACTOR.is_sensitive(key)


def test_short_patterns_match_whole_words_only() -> None:
    redactor = Redactor(extra_keys=("pin",))
    assert redactor.is_sensitive("pin")
    assert redactor.is_sensitive("card_pin")
    assert redactor.is_sensitive("cardPIN")
    assert not redactor.is_sensitive("shipping")


def test_extra_keys_are_normalised_like_the_defaults() -> None:
    redactor = Redactor(extra_keys=("Account Number",))
    assert redactor.is_sensitive("account_number")
    assert redactor.is_sensitive("bankAccountNumber")


def test_default_keys_can_be_turned_off() -> None:
    redactor = Redactor(extra_keys=("iban",), use_default_keys=False)
    assert redactor.is_sensitive("iban")
    assert not redactor.is_sensitive("password")


def test_extra_keys_given_as_a_lone_string_are_refused() -> None:
    with pytest.raises(TypeError, match="not a string"):
        Redactor(extra_keys="pin")  # type: ignore[arg-type]


def test_a_dotted_path_is_sensitive_when_any_segment_is() -> None:
    assert DEFAULT_REDACTOR.is_sensitive_path("auth.token")
    assert DEFAULT_REDACTOR.is_sensitive_path("headers.Authorization")
    assert not DEFAULT_REDACTOR.is_sensitive_path("user.id")


# --- redact -----------------------------------------------------------------------------


def test_sensitive_values_are_replaced_at_any_depth_and_inside_lists() -> None:
    value = {
        "api_key": "sk-1",
        "user": {"name": "ada", "API-Key": "sk-2"},
        "calls": [{"apiKey": "sk-3", "n": 1}],
        "usage": {"input_tokens": 12},
    }
    assert DEFAULT_REDACTOR.redact(value) == {
        "api_key": REDACTED,
        "user": {"name": "ada", "API-Key": REDACTED},
        "calls": [{"apiKey": REDACTED, "n": 1}],
        "usage": {"input_tokens": 12},
    }


def test_a_sensitive_key_hides_its_whole_subtree() -> None:
    assert DEFAULT_REDACTOR.redact({"credentials": {"user": "u", "pw": "p"}}) == {
        "credentials": REDACTED
    }


def test_redact_never_mutates_its_input() -> None:
    value = {"password": "p", "nested": [{"token": "t"}]}
    DEFAULT_REDACTOR.redact(value)
    assert value == {"password": "p", "nested": [{"token": "t"}]}


def test_pydantic_models_and_dataclasses_are_redacted_as_dicts() -> None:
    assert DEFAULT_REDACTOR.redact([Login(user="ada", password="p"), Client("c", "s")]) == [
        {"user": "ada", "password": REDACTED},
        {"name": "c", "client_secret": REDACTED},
    ]


def test_redact_returns_json_able_data() -> None:
    value = {
        1: (Level.HIGH, {"x"}),
        "when": datetime.datetime(2024, 5, 1, 12, 0),
    }
    redacted = DEFAULT_REDACTOR.redact(value)
    assert redacted == {"1": ["high", ["x"]], "when": "2024-05-01T12:00:00"}
    json.dumps(redacted)


def test_circular_and_very_deep_values_are_cut() -> None:
    loop: list[object] = []
    loop.append(loop)
    assert DEFAULT_REDACTOR.redact(loop) == ["[circular]"]
    deep: object = "leaf"
    for _ in range(100):
        deep = [deep]
    assert "[too deep]" in json.dumps(DEFAULT_REDACTOR.redact(deep))


def test_the_replacement_can_be_chosen() -> None:
    assert Redactor(replacement="***").redact({"token": "t"}) == {"token": "***"}


def test_a_user_function_can_redact_more() -> None:
    seen: list[tuple[str, object]] = []

    def hide_emails(key: str, value: object) -> object:
        seen.append((key, value))
        return "[EMAIL]" if isinstance(value, str) and "@" in value else value

    redactor = Redactor(function=hide_emails)
    assert redactor.redact({"contact": "a@b.c", "name": "ada", "password": "p"}) == {
        "contact": "[EMAIL]",
        "name": "ada",
        "password": REDACTED,
    }
    assert seen == [("contact", "a@b.c"), ("name", "ada")]


# --- truncate ---------------------------------------------------------------------------


def test_text_within_the_limit_is_unchanged() -> None:
    assert truncate("hello", 5) == "hello"


def test_long_text_is_cut_to_the_limit_with_a_marker_counting_what_was_cut() -> None:
    text = "x" * 100
    cut = truncate(text, 40)
    assert len(cut) == 40
    assert cut == "x" * 19 + "…[truncated 81 chars]"


def test_a_limit_too_small_for_the_marker_cuts_without_one() -> None:
    assert truncate("abcdefghij", 3) == "abc"
    assert truncate("abc", 0) == ""


def test_a_negative_limit_is_refused() -> None:
    with pytest.raises(ValueError, match="limit"):
        truncate("abc", -1)


@given(st.text(max_size=300), st.integers(min_value=0, max_value=200))
def test_truncated_text_never_exceeds_the_limit_and_keeps_a_prefix(text: str, limit: int) -> None:
    cut = truncate(text, limit)
    assert len(cut) <= limit
    if cut != text:
        kept, separator, marker = cut.rpartition("…[truncated ")
        if not separator:  # the limit left no room for a marker
            kept = cut
        assert text.startswith(kept)
        assert not separator or marker == f"{len(text) - len(kept)} chars]"


# --- to_attribute_json ------------------------------------------------------------------


def test_attribute_json_is_compact_redacted_and_keeps_non_ascii() -> None:
    assert to_attribute_json({"city": "Zürich", "token": "t", "n": [1, 2]}) == (
        '{"city":"Zürich","token":"[REDACTED]","n":[1,2]}'
    )


def test_attribute_json_of_a_model_uses_its_fields() -> None:
    assert to_attribute_json(Login(user="ada", password="p")) == (
        '{"user":"ada","password":"[REDACTED]"}'
    )


def test_attribute_json_of_a_string_is_a_json_string() -> None:
    assert to_attribute_json("hi") == '"hi"'


def test_attribute_json_is_truncated_to_the_limit() -> None:
    text = to_attribute_json({"text": "a" * 20_000})
    assert len(text) == DEFAULT_MAX_ATTRIBUTE_LENGTH
    assert text.endswith(" chars]")
    assert len(to_attribute_json("a" * 100, limit=50)) == 50


def test_attribute_json_uses_the_given_redactor() -> None:
    redactor = Redactor(extra_keys=("email",))
    assert to_attribute_json({"email": "a@b.c"}, redactor=redactor) == '{"email":"[REDACTED]"}'


# --- strip_credentials ------------------------------------------------------------------


def test_credentials_are_dropped_from_a_request_context_not_masked() -> None:
    context = {"user_id": "u", "Authorization": "Bearer x", "api_key": "k", "input_tokens": 3}
    assert strip_credentials(context) == {"user_id": "u", "input_tokens": 3}


def test_strip_credentials_looks_at_every_level() -> None:
    context = {"user": {"password": "p", "name": "ada"}, "items": [{"token": "t", "n": 1}]}
    assert strip_credentials(context) == {"user": {"name": "ada"}, "items": [{"n": 1}]}


_KEYS = st.sampled_from(
    ["id", "name", "api_key", "API-Key", "apiKey", "input_tokens", "password", 'say "hi"', "é"]
) | st.text(max_size=8)
_JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_KEYS, inner, max_size=4),
    max_leaves=20,
)


@given(_JSONISH)
def test_attribute_json_always_equals_redacting_first_then_rendering(value: object) -> None:
    # to_attribute_json skips the walk when no key of the rendered JSON is sensitive: it must
    # never give anything but what the careful path (walk, then render) gives.
    careful = pydantic_core.to_json(DEFAULT_REDACTOR.redact(value), fallback=str).decode()
    assert to_attribute_json(value, limit=1_000_000) == careful


@given(_JSONISH | st.text(alphabet='ab:"\\{},[] ', max_size=40))
def test_the_key_scan_finds_the_same_keys_with_or_without_escapes(value: object) -> None:
    # Text without a backslash is scanned with a simpler pattern: it must find the same keys.
    text = value if isinstance(value, str) else pydantic_core.to_json(value).decode()
    assert _json_keys(text) == frozenset(_JSON_KEY.findall(text))


def test_an_error_inside_an_event_payload_is_redacted_by_the_runs_redactor() -> None:
    config = TracingConfig(redactor=Redactor(extra_keys=("customer_id",)), max_error_length=40)
    error = RuntimeError("lookup failed: customer_id=C-889 and a long explanation after it")
    wire = StepResultPayload("s", "s", None, "failed", {"q": 1}, 1, 2, error=error).to_dict()

    payload = json.loads(config.payload_json(wire))

    # As on the span's status: the run's own keys hidden, its own limits applied.
    assert payload["error"]["message"] == config.error_message(error)
    assert "C-889" not in json.dumps(payload)
