"""Resolving `TracingOptions`: invalid values are logged, ignored and recorded, or raised."""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import pydantic
import pytest

from spanflow.context import RequestContext
from spanflow.tracing.ids import (
    InvalidSpanIdError,
    InvalidTraceIdError,
    InvalidTraceparentError,
    TracingOptionsError,
)
from spanflow.tracing.options import (
    Rejection,
    ResolvedTracing,
    TracingOptions,
    merge_nested,
    resolve_tracing_options,
)
from spanflow.tracing.redaction import Redactor

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
SPAN_ID = "b7ad6b7169203331"
TRACEPARENT = f"00-{TRACE_ID}-{SPAN_ID}-00"


def resolve(**options: Any) -> ResolvedTracing:
    """Resolve options given as keywords (typed `Any`, to pass wrong types on purpose)."""
    return resolve_tracing_options(TracingOptions(**options))


def rejected_fields(resolved: ResolvedTracing) -> list[str]:
    return [rejection.field for rejection in resolved.rejected]


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == "spanflow.tracing" and record.levelno == logging.WARNING
    ]


# --- the options themselves -------------------------------------------------------------


def test_options_are_frozen_and_keyword_only() -> None:
    options = TracingOptions(trace_id="abc")
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.trace_id = "def"  # type: ignore[misc]
    with pytest.raises(TypeError):
        TracingOptions("abc")  # type: ignore[call-arg]


def test_no_options_resolve_to_nothing_requested() -> None:
    assert resolve_tracing_options(None) == ResolvedTracing()
    assert resolve_tracing_options(TracingOptions()) == ResolvedTracing()


def test_runs_without_options_never_share_their_attributes() -> None:
    first, second = resolve_tracing_options(None), resolve_tracing_options(None)
    assert first.attributes is not second.attributes


# --- parent ids -------------------------------------------------------------------------


def test_trace_id_alone_makes_a_root_span_of_that_trace() -> None:
    resolved = resolve(trace_id="ABC")
    assert resolved.trace_id == "0" * 29 + "abc"
    assert resolved.parent_span_id is None
    assert resolved.rejected == ()


def test_trace_id_and_parent_span_id_give_a_sampled_remote_parent() -> None:
    resolved = resolve(trace_id=TRACE_ID, parent_span_id="1F")
    assert (resolved.trace_id, resolved.parent_span_id, resolved.sampled) == (
        TRACE_ID,
        "0" * 14 + "1f",
        True,
    )


def test_parent_span_id_without_trace_id_is_rejected() -> None:
    resolved = resolve(parent_span_id=SPAN_ID)
    assert (resolved.trace_id, resolved.parent_span_id) == (None, None)
    assert rejected_fields(resolved) == ["parent_span_id"]
    assert "without trace_id" in resolved.rejected[0].reason


def test_parent_span_id_with_an_invalid_trace_id_is_rejected_too() -> None:
    resolved = resolve(trace_id="nope", parent_span_id=SPAN_ID)
    assert (resolved.trace_id, resolved.parent_span_id) == (None, None)
    assert rejected_fields(resolved) == ["trace_id", "parent_span_id"]


def test_invalid_parent_span_id_leaves_a_valid_trace_id_as_a_root() -> None:
    resolved = resolve(trace_id=TRACE_ID, parent_span_id="zz")
    assert (resolved.trace_id, resolved.parent_span_id) == (TRACE_ID, None)
    assert rejected_fields(resolved) == ["parent_span_id"]


def test_traceparent_gives_ids_and_sampled_flag() -> None:
    resolved = resolve(traceparent=TRACEPARENT)
    assert (resolved.trace_id, resolved.parent_span_id, resolved.sampled) == (
        TRACE_ID,
        SPAN_ID,
        False,
    )


def test_explicit_ids_win_over_traceparent_which_is_rejected() -> None:
    resolved = resolve(trace_id="abc", traceparent=TRACEPARENT)
    assert resolved.trace_id == "0" * 29 + "abc"
    assert resolved.parent_span_id is None
    assert rejected_fields(resolved) == ["traceparent"]
    assert "take precedence" in resolved.rejected[0].reason


def test_traceparent_is_used_when_the_explicit_trace_id_was_rejected() -> None:
    resolved = resolve(trace_id="not hex", traceparent=TRACEPARENT)
    assert (resolved.trace_id, resolved.parent_span_id) == (TRACE_ID, SPAN_ID)
    assert rejected_fields(resolved) == ["trace_id"]


def test_invalid_traceparent_is_rejected() -> None:
    resolved = resolve(traceparent="00-nope")
    assert resolved.trace_id is None
    assert rejected_fields(resolved) == ["traceparent"]


# --- invalid values: one warning each, ignored, recorded --------------------------------


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"trace_id": "xyz"}, "trace_id"),
        ({"trace_id": "a" * 33}, "trace_id"),
        ({"trace_id": "0" * 32}, "trace_id"),
        ({"trace_id": ""}, "trace_id"),
        ({"trace_id": 123}, "trace_id"),
        ({"parent_span_id": SPAN_ID}, "parent_span_id"),
        ({"traceparent": "garbage"}, "traceparent"),
        ({"tags": "prod"}, "tags"),
        ({"tags": {"env": "prod"}}, "tags"),
        ({"tags": 7}, "tags"),
        ({"tags": ["ok", 3]}, "tags[1]"),
        ({"tags": ["ok", " "]}, "tags[1]"),
        ({"metadata": "user=42"}, "metadata"),
        ({"metadata": ["user", "42"]}, "metadata"),
        ({"request_context_keys": "user.id"}, "request_context_keys"),
        ({"request_context_keys": ["user.id", None]}, "request_context_keys[1]"),
        ({"request_context_keys": [""]}, "request_context_keys[0]"),
        ({"request_context_keys": ["auth.token"]}, "request_context_keys[0]"),
        ({"hide_input": "yes"}, "hide_input"),
    ],
)
def test_each_invalid_value_logs_one_warning_and_is_recorded(
    options: dict[str, Any], field: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="spanflow.tracing")
    resolved = resolve(**options)
    assert rejected_fields(resolved) == [field]
    [warning] = warnings(caplog)
    assert warning.startswith(f"spanflow tracing: ignoring invalid option {field}: ")
    assert "strict=True" in warning


def test_valid_options_log_nothing(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="spanflow.tracing")
    resolve(trace_id=TRACE_ID, parent_span_id=SPAN_ID, tags=["a"], metadata={"k": "v"})
    assert caplog.records == []


def test_warnings_go_to_the_logger_given() -> None:
    records: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    logger = logging.getLogger("test.tracing.custom")
    logger.addHandler(Collect())
    logger.propagate = False
    resolve_tracing_options(TracingOptions(trace_id="xyz"), logger=logger)
    assert [record.levelno for record in records] == [logging.WARNING]


def test_rejections_are_listed_for_the_run_span_attribute() -> None:
    resolved = resolve(trace_id="xyz", tags="prod")
    assert resolved.rejected_attribute() == {
        "spanflow.tracing.rejected": (
            "trace_id: 'xyz' is not hex: use 1–32 hex characters (0-9, a-f)",
            "tags: 'prod' must be a list of strings, not a single string: write tags=['beta']",
        )
    }


def test_no_rejections_give_no_rejected_attribute() -> None:
    assert resolve(trace_id="abc").rejected_attribute() == {}


def test_a_rejection_shows_field_value_and_reason() -> None:
    rejection = Rejection(field="trace_id", value="'xyz'", reason="is not hex")
    assert rejection.as_attribute() == "trace_id: 'xyz' is not hex"


def test_a_huge_rejected_value_is_shown_shortened() -> None:
    resolved = resolve(metadata="x" * 10_000)
    assert len(resolved.rejected[0].value) < 100


# --- strict mode ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"trace_id": "xyz"}, InvalidTraceIdError),
        ({"parent_span_id": "zz", "trace_id": TRACE_ID}, InvalidSpanIdError),
        ({"parent_span_id": SPAN_ID}, InvalidSpanIdError),
        ({"traceparent": "garbage"}, InvalidTraceparentError),
        ({"trace_id": TRACE_ID, "traceparent": TRACEPARENT}, InvalidTraceparentError),
        ({"tags": "prod"}, TracingOptionsError),
        ({"metadata": "user=42"}, TracingOptionsError),
        ({"request_context_keys": "user.id"}, TracingOptionsError),
    ],
)
def test_strict_mode_raises_instead_of_logging(
    options: dict[str, Any], error: type[TracingOptionsError], caplog: pytest.LogCaptureFixture
) -> None:
    with pytest.raises(error):
        resolve(strict=True, **options)
    assert warnings(caplog) == []


def test_strict_mode_error_is_a_value_error_naming_the_field() -> None:
    with pytest.raises(ValueError, match=r"^tags: 'prod' must be a list of strings"):
        resolve(strict=True, tags="prod")


def test_strict_mode_accepts_valid_options() -> None:
    assert resolve(strict=True, trace_id="abc").trace_id == "0" * 29 + "abc"


# --- tags -------------------------------------------------------------------------------


def test_tags_become_attributes() -> None:
    resolved = resolve(tags=["beta", "eu", "beta"])
    assert resolved.tags == ("beta", "eu")
    assert resolved.attributes == {
        "spanflow.tags": ("beta", "eu"),
        "spanflow.tag.beta": True,
        "spanflow.tag.eu": True,
    }


def test_a_single_string_tag_is_never_spread_into_characters() -> None:
    resolved = resolve(tags="prod")
    assert resolved.tags == ()
    assert resolved.attributes == {}


def test_invalid_tags_are_dropped_and_the_others_kept() -> None:
    resolved = resolve(tags=["a", 1, "b"])
    assert resolved.tags == ("a", "b")


def test_a_set_of_tags_is_sorted_for_stable_attributes() -> None:
    assert resolve(tags={"b", "a", "c"}).tags == ("a", "b", "c")


# --- metadata ---------------------------------------------------------------------------


def test_metadata_is_flattened_and_redacted() -> None:
    resolved = resolve(metadata={"user": {"id": "u-42", "api_key": "sk"}, "plan": "pro"})
    assert resolved.attributes == {
        "spanflow.metadata.user.id": "u-42",
        "spanflow.metadata.user.api_key": "[REDACTED]",
        "spanflow.metadata.plan": "pro",
    }


def test_metadata_may_be_a_pydantic_model() -> None:
    class Meta(pydantic.BaseModel):
        user_id: str

    assert resolve(metadata=Meta(user_id="u-1")).attributes == {"spanflow.metadata.user_id": "u-1"}


def test_metadata_of_the_wrong_type_is_not_spread_into_characters() -> None:
    assert resolve(metadata="user").attributes == {}


def test_long_metadata_values_are_truncated() -> None:
    resolved = resolve_tracing_options(
        TracingOptions(metadata={"note": "n" * 1000}), max_attribute_length=100
    )
    note = resolved.attributes["spanflow.metadata.note"]
    assert isinstance(note, str)
    assert len(note) == 100
    assert note.endswith("chars]")


def test_a_custom_redactor_is_applied_to_metadata() -> None:
    resolved = resolve_tracing_options(
        TracingOptions(metadata={"email": "a@b.c"}), redactor=Redactor(extra_keys=("email",))
    )
    assert resolved.attributes == {"spanflow.metadata.email": "[REDACTED]"}


# --- request-context keys ---------------------------------------------------------------

CONTEXT = {"user": {"id": "u-42", "tier": "gold"}, "tenant.id": "t-1", "api_key": "sk"}


def test_request_context_keys_are_exported_as_metadata() -> None:
    resolved = resolve_tracing_options(
        TracingOptions(request_context_keys=["user.id", "tenant.id", "missing"]),
        request_context=CONTEXT,
    )
    assert resolved.attributes == {
        "spanflow.metadata.user.id": "u-42",
        "spanflow.metadata.tenant.id": "t-1",
    }
    assert resolved.rejected == ()


def test_request_context_keys_are_read_from_the_engines_request_context() -> None:
    resolved = resolve_tracing_options(
        TracingOptions(request_context_keys=["user.id"]),
        request_context=RequestContext(CONTEXT),
    )
    assert resolved.attributes == {"spanflow.metadata.user.id": "u-42"}


def test_global_request_context_keys_apply_without_options() -> None:
    resolved = resolve_tracing_options(
        None, request_context=CONTEXT, global_request_context_keys=["user.tier"]
    )
    assert resolved.attributes == {"spanflow.metadata.user.tier": "gold"}


def test_global_and_run_keys_are_combined() -> None:
    resolved = resolve_tracing_options(
        TracingOptions(request_context_keys=["user.id"]),
        request_context=CONTEXT,
        global_request_context_keys=["user.tier", "user.id"],
    )
    assert resolved.attributes == {
        "spanflow.metadata.user.tier": "gold",
        "spanflow.metadata.user.id": "u-42",
    }


def test_credential_request_context_keys_are_rejected_never_exported() -> None:
    resolved = resolve_tracing_options(
        TracingOptions(request_context_keys=["api_key"]), request_context=CONTEXT
    )
    assert resolved.attributes == {}
    assert resolved.rejected[0].reason == "names a credential, which is never exported"


def test_invalid_global_keys_are_rejected_under_their_own_name() -> None:
    resolved = resolve_tracing_options(
        None,
        request_context=CONTEXT,
        global_request_context_keys="user.id",
    )
    assert rejected_fields(resolved) == ["global_request_context_keys"]


def test_explicit_metadata_wins_over_a_request_context_key() -> None:
    resolved = resolve_tracing_options(
        TracingOptions(metadata={"user": {"id": "explicit"}}, request_context_keys=["user.id"]),
        request_context=CONTEXT,
    )
    assert resolved.attributes == {"spanflow.metadata.user.id": "explicit"}


# --- hiding input and output ------------------------------------------------------------


def test_hide_flags_are_passed_through() -> None:
    resolved = resolve(hide_input=True, hide_output=False)
    assert (resolved.hide_input, resolved.hide_output) == (True, False)


def test_a_non_bool_hide_flag_is_rejected_but_a_truthy_one_still_hides() -> None:
    resolved = resolve(hide_output="yes")
    assert resolved.hide_output is True
    assert rejected_fields(resolved) == ["hide_output"]


# --- nested runs ------------------------------------------------------------------------


def test_nested_run_ignores_its_own_trace_ids_without_rejecting_them(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="spanflow.tracing")
    parent = resolve(trace_id=TRACE_ID, parent_span_id=SPAN_ID)
    child = TracingOptions(trace_id="abc", parent_span_id="def", traceparent="garbage")
    merged = merge_nested(parent, child)
    assert (merged.trace_id, merged.parent_span_id) == (None, None)
    assert merged.rejected == ()
    assert warnings(caplog) == []


def test_nested_run_merges_metadata_and_tags_over_the_parents() -> None:
    parent = resolve(tags=["a", "b"], metadata={"user": "u-1", "plan": "free"})
    merged = merge_nested(parent, TracingOptions(tags=["b", "c"], metadata={"plan": "pro"}))
    assert merged.tags == ("a", "b", "c")
    assert merged.attributes == {
        "spanflow.metadata.user": "u-1",
        "spanflow.metadata.plan": "pro",
        "spanflow.tags": ("a", "b", "c"),
        "spanflow.tag.a": True,
        "spanflow.tag.b": True,
        "spanflow.tag.c": True,
    }


def test_nested_run_without_options_inherits_the_parents_attributes_only() -> None:
    parent = resolve(trace_id="xyz", tags=["a"], hide_input=True)
    merged = merge_nested(parent, None)
    assert merged.attributes == parent.attributes
    assert merged.hide_input is True
    assert merged.rejected == ()
    assert merged.trace_id is None


def test_nested_run_hides_when_either_side_hides() -> None:
    parent = resolve(hide_input=True)
    merged = merge_nested(parent, TracingOptions(hide_output=True))
    assert (merged.hide_input, merged.hide_output) == (True, True)


def test_nested_run_records_only_its_own_rejections() -> None:
    parent = resolve(tags="bad")
    merged = merge_nested(parent, TracingOptions(metadata="bad"))  # type: ignore[arg-type]
    assert rejected_fields(merged) == ["metadata"]


def test_nested_run_exports_its_own_request_context_keys() -> None:
    merged = merge_nested(
        resolve(),
        TracingOptions(request_context_keys=["user.id"]),
        request_context=CONTEXT,
    )
    assert merged.attributes == {"spanflow.metadata.user.id": "u-42"}


def test_nested_run_in_strict_mode_raises_on_its_own_invalid_values() -> None:
    with pytest.raises(TracingOptionsError):
        merge_nested(resolve(), TracingOptions(tags="bad", strict=True))
