"""Trace and span ids: normalisation to OTLP's fixed-width lowercase hex, and traceparent."""

from __future__ import annotations

import pickle

import pytest
from hypothesis import given
from hypothesis import strategies as st

from spanflow.errors import SpanflowError
from spanflow.tracing.ids import (
    InvalidSpanIdError,
    InvalidTraceIdError,
    InvalidTraceparentError,
    TraceParent,
    TracingOptionsError,
    format_span_id,
    format_trace_id,
    normalize_span_id,
    normalize_trace_id,
    parse_traceparent,
    span_id_int,
    trace_id_int,
)

HEX = "0123456789abcdefABCDEF"
TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
SPAN_ID = "b7ad6b7169203331"


# --- trace ids --------------------------------------------------------------------------


def test_short_trace_id_is_left_padded_with_zeros_to_32_characters() -> None:
    assert normalize_trace_id("abc") == "0" * 29 + "abc"


def test_full_length_trace_id_is_returned_unchanged() -> None:
    assert normalize_trace_id(TRACE_ID) == TRACE_ID


def test_uppercase_trace_id_is_lowercased() -> None:
    assert normalize_trace_id("ABCDEF") == "0" * 26 + "abcdef"


def test_whitespace_around_a_trace_id_is_ignored() -> None:
    assert normalize_trace_id("  1f\n") == "0" * 30 + "1f"


@pytest.mark.parametrize(
    ("value", "rule"),
    [
        ("xyz", "is not hex"),
        ("0x1f", "is not hex"),
        ("+1f", "is not hex"),
        ("1_f", "is not hex"),
        ("ab cd", "is not hex"),
        ("a" * 33, "is 33 characters long"),
        ("0", "is all zeros"),
        ("0" * 32, "is all zeros"),
        ("", "is empty"),
        ("   ", "is empty"),
        (123, "must be a string, got int"),
        (None, "must be a string, got NoneType"),
        (b"abc", "must be a string, got bytes"),
        (True, "must be a string, got bool"),
    ],
)
def test_invalid_trace_id_is_rejected_naming_the_field_and_the_rule(
    value: object, rule: str
) -> None:
    with pytest.raises(InvalidTraceIdError) as caught:
        normalize_trace_id(value)
    assert str(caught.value).startswith("trace_id: ")
    assert rule in str(caught.value)
    assert caught.value.field == "trace_id"
    assert caught.value.reason.startswith(rule)


def test_id_errors_are_value_errors_and_spanflow_errors() -> None:
    with pytest.raises(InvalidTraceIdError) as caught:
        normalize_trace_id("nope")
    assert isinstance(caught.value, TracingOptionsError)
    assert isinstance(caught.value, ValueError)
    assert isinstance(caught.value, SpanflowError)


def test_error_message_uses_the_field_name_given_by_the_caller() -> None:
    with pytest.raises(InvalidTraceIdError, match=r"^run\.trace_id: 'xyz' is not hex"):
        normalize_trace_id("xyz", field="run.trace_id")


def test_id_error_survives_pickling_with_its_parts() -> None:
    with pytest.raises(InvalidTraceIdError) as caught:
        normalize_trace_id("xyz")
    copy = pickle.loads(pickle.dumps(caught.value))
    assert type(copy) is InvalidTraceIdError
    assert (copy.field, copy.value_repr, copy.reason) == ("trace_id", "'xyz'", caught.value.reason)
    assert str(copy) == str(caught.value)


def test_error_message_shows_a_bounded_repr_of_a_huge_value() -> None:
    with pytest.raises(InvalidTraceIdError) as caught:
        normalize_trace_id("z" * 10_000)
    assert len(str(caught.value)) < 200


@given(st.text(alphabet=HEX, min_size=1, max_size=32).filter(lambda s: int(s, 16) != 0))
def test_any_1_to_32_hex_trace_id_normalises_to_32_lowercase_hex_of_the_same_value(
    value: str,
) -> None:
    normalised = normalize_trace_id(value)
    assert len(normalised) == 32
    assert set(normalised) <= set("0123456789abcdef")
    assert int(normalised, 16) == int(value, 16)
    assert trace_id_int(value) == int(value, 16)
    assert format_trace_id(trace_id_int(value)) == normalised


@given(st.text(alphabet=HEX, min_size=33, max_size=64))
def test_any_hex_trace_id_longer_than_32_is_rejected(value: str) -> None:
    with pytest.raises(InvalidTraceIdError, match="characters long"):
        normalize_trace_id(value)


# --- span ids ---------------------------------------------------------------------------


def test_short_span_id_is_left_padded_with_zeros_to_16_characters() -> None:
    assert normalize_span_id("ABC") == "0" * 13 + "abc"


@pytest.mark.parametrize(
    ("value", "rule"),
    [
        ("g1", "is not hex"),
        ("a" * 17, "is 17 characters long"),
        ("0000", "is all zeros"),
        ("", "is empty"),
        (42, "must be a string, got int"),
    ],
)
def test_invalid_span_id_is_rejected_naming_the_field_and_the_rule(
    value: object, rule: str
) -> None:
    with pytest.raises(InvalidSpanIdError, match=rf"^parent_span_id: .* {rule}"):
        normalize_span_id(value)


@given(st.text(alphabet=HEX, min_size=1, max_size=16).filter(lambda s: int(s, 16) != 0))
def test_any_1_to_16_hex_span_id_normalises_to_16_lowercase_hex_of_the_same_value(
    value: str,
) -> None:
    normalised = normalize_span_id(value)
    assert len(normalised) == 16
    assert normalised == normalised.lower()
    assert span_id_int(value) == int(value, 16)
    assert format_span_id(span_id_int(value)) == normalised


# --- traceparent ------------------------------------------------------------------------


def test_sampled_traceparent_gives_its_ids_and_the_sampled_flag() -> None:
    assert parse_traceparent(f"00-{TRACE_ID}-{SPAN_ID}-01") == TraceParent(
        trace_id=TRACE_ID, span_id=SPAN_ID, sampled=True
    )


def test_unsampled_traceparent_is_not_sampled() -> None:
    assert parse_traceparent(f"00-{TRACE_ID}-{SPAN_ID}-00").sampled is False


def test_only_the_lowest_flag_bit_means_sampled() -> None:
    assert parse_traceparent(f"00-{TRACE_ID}-{SPAN_ID}-03").sampled is True
    assert parse_traceparent(f"00-{TRACE_ID}-{SPAN_ID}-02").sampled is False


def test_uppercase_traceparent_is_accepted_and_normalised_to_lowercase() -> None:
    parsed = parse_traceparent(f"00-{TRACE_ID.upper()}-{SPAN_ID.upper()}-01")
    assert (parsed.trace_id, parsed.span_id) == (TRACE_ID, SPAN_ID)


def test_whitespace_around_a_traceparent_is_ignored() -> None:
    assert parse_traceparent(f" 00-{TRACE_ID}-{SPAN_ID}-01\t").trace_id == TRACE_ID


def test_future_version_traceparent_may_carry_extra_fields() -> None:
    parsed = parse_traceparent(f"cc-{TRACE_ID}-{SPAN_ID}-01-what-the-future-holds")
    assert parsed == TraceParent(trace_id=TRACE_ID, span_id=SPAN_ID, sampled=True)


def test_future_version_traceparent_without_extra_fields_is_accepted() -> None:
    assert parse_traceparent(f"01-{TRACE_ID}-{SPAN_ID}-00").sampled is False


@pytest.mark.parametrize(
    ("value", "rule"),
    [
        (f"ff-{TRACE_ID}-{SPAN_ID}-01", "version ff"),
        (f"00-{TRACE_ID}-{SPAN_ID}-01-extra", "version 00 needs exactly 55"),
        (f"01-{TRACE_ID}-{SPAN_ID}-01x", "trace flags longer than 2"),
        (f"00-{TRACE_ID}-{SPAN_ID}-1", "too short"),
        ("", "too short"),
        (f"0g-{TRACE_ID}-{SPAN_ID}-01", "no valid version"),
        (f"00_{TRACE_ID}-{SPAN_ID}-01", "no valid version"),
        (f"00-{TRACE_ID}_{SPAN_ID}-01", "is not shaped like"),
        (f"00-{TRACE_ID}-{SPAN_ID}_01", "is not shaped like"),
        (f"00-{TRACE_ID[:-1]}z-{SPAN_ID}-01", "non-hex"),
        (f"00-{TRACE_ID}-{SPAN_ID[:-1]}z-01", "non-hex"),
        (f"00-{TRACE_ID}-{SPAN_ID}-0z", "non-hex"),
        (f"00-{'0' * 32}-{SPAN_ID}-01", "all-zero trace id"),
        (f"00-{TRACE_ID}-{'0' * 16}-01", "all-zero span id"),
        (42, "must be a string, got int"),
    ],
)
def test_invalid_traceparent_is_rejected_naming_the_rule(value: object, rule: str) -> None:
    with pytest.raises(InvalidTraceparentError, match=r"^traceparent: ") as caught:
        parse_traceparent(value)
    assert rule in caught.value.reason
