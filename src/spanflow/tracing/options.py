"""`TracingOptions`, what a caller passes per run, and how it is checked and resolved.

`resolve_tracing_options` turns the options of one run (plus the request context and the keys
configured globally) into a `ResolvedTracing`: normalised parent ids, the sampled flag, and the
span attributes for tags, metadata and request-context keys, redacted and length-limited.
Invalid input never fails a run by default: each invalid value is logged once as a warning on
the ``spanflow.tracing`` logger, ignored, and kept as a `Rejection` so the run span can show it
in ``spanflow.tracing.rejected``; with ``strict=True`` a `TracingOptionsError` is raised
instead. A rejected value is only ever shown redacted (the log line and the attribute name the
option and the problem). Tags pass the redactor's text rules (``"api_key=S"`` becomes
``"api_key=[REDACTED]"``), and tags and metadata together are capped per span
(`cap_user_attributes`, one warning). `merge_nested` does the same for a run started inside
another run.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass, field
from typing import Final

import pydantic

from spanflow.tracing.attributes import (
    DROPPED_ATTRIBUTE,
    MAX_USER_ATTRIBUTES,
    METADATA_PREFIX,
    TAG_PREFIX,
    TAGS_ATTRIBUTE,
    AttributeValue,
    cap_user_attributes,
    flatten_value,
    limit_attribute_lengths,
    request_context_attributes,
    tag_attributes,
)
from spanflow.tracing.ids import (
    InvalidSpanIdError,
    InvalidTraceparentError,
    TracingOptionsError,
    normalize_span_id,
    normalize_trace_id,
    parse_traceparent,
)
from spanflow.tracing.redaction import DEFAULT_MAX_ATTRIBUTE_LENGTH, DEFAULT_REDACTOR, Redactor

__all__ = [
    "REJECTED_ATTRIBUTE",
    "Rejection",
    "ResolvedTracing",
    "TracingOptions",
    "capped",
    "merge_nested",
    "options_from_dict",
    "options_to_dict",
    "resolve_tracing_options",
]

REJECTED_ATTRIBUTE: Final = "spanflow.tracing.rejected"
"""The run span attribute listing the tracing options that were rejected."""

_LOGGER: Final = logging.getLogger("spanflow.tracing")


@dataclass(frozen=True, slots=True, kw_only=True)
class TracingOptions:
    """How one run is traced: its parent trace, tags, metadata and what it hides."""

    trace_id: str | None = None
    """1–32 hex characters, any case; padded to 32. Without `parent_span_id` the run span is
    the root span of this trace."""
    parent_span_id: str | None = None
    """1–16 hex characters, any case; padded to 16. Makes the run span a child of this remote
    span; needs `trace_id`."""
    traceparent: str | None = None
    """A W3C ``traceparent`` header value, an alternative to `trace_id` and `parent_span_id`.
    When those are given too (and valid) they win and this value is rejected."""
    tags: Sequence[str] | None = None
    """Tags, each exported as ``spanflow.tag.<tag> = true`` and listed in ``spanflow.tags``."""
    metadata: Mapping[str, object] | None = None
    """Flattened to one ``spanflow.metadata.<path>`` attribute per leaf, after redaction."""
    request_context_keys: Sequence[str] | None = None
    """Request-context keys (literal or dot paths) exported as ``spanflow.metadata.<key>``, in
    addition to the globally configured ones. Keys naming a credential are rejected."""
    hide_input: bool = False
    """Do not record ``spanflow.input`` for this run."""
    hide_output: bool = False
    """Do not record ``spanflow.output`` for this run."""
    strict: bool = False
    """Raise `TracingOptionsError` on the first invalid value instead of logging it."""


_PARENT_FIELDS: Final = ("trace_id", "parent_span_id", "traceparent")


def options_to_dict(options: TracingOptions, *, parent: bool = True) -> dict[str, object]:
    """The options as plain data, to store with a queued run (fields left at their defaults
    are left out). ``parent=False`` leaves out the explicit parent (trace id, parent span
    id, traceparent): a job's publish span took it, and the worker's run span is that span's
    child."""
    data: dict[str, object] = {}
    for item in dataclasses.fields(TracingOptions):
        value = getattr(options, item.name)
        if value == item.default or (not parent and item.name in _PARENT_FIELDS):
            continue
        if isinstance(value, Mapping):
            value = dict(value)
        elif isinstance(value, Sequence) and not isinstance(value, str):
            value = list(value)
        data[item.name] = value
    return data


def options_from_dict(data: Mapping[str, object]) -> TracingOptions:
    """`TracingOptions` back from `options_to_dict`'s form (unknown keys are an error)."""
    known = {item.name for item in dataclasses.fields(TracingOptions)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise TracingOptionsError("tracing_options", ", ".join(unknown), "are not tracing options")
    return TracingOptions(**data)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class Rejection:
    """One tracing option value that was invalid and therefore ignored."""

    field: str
    """The option, e.g. ``"trace_id"`` or ``"tags[1]"``."""
    value: str
    """A bounded `repr` of the rejected value."""
    reason: str
    """The rule it broke, phrased to follow the value."""

    @classmethod
    def from_error(cls, error: TracingOptionsError, redactor: Redactor | None = None) -> Rejection:
        """The rejection recorded for an error that was not raised.

        The error's value is already redacted by the default rules; ``redactor`` (the
        configured one) redacts it again, with its own keys and patterns.
        """
        value = str(error.value_repr)
        if redactor is not None:
            value = redactor.redact_text(value)
        return cls(field=error.field, value=value, reason=error.reason)

    def as_attribute(self) -> str:
        """This rejection as one entry of ``spanflow.tracing.rejected``."""
        return f"{self.field}: {self.value} {self.reason}"


@dataclass(frozen=True, slots=True)
class ResolvedTracing:
    """Tracing options after checking: what the engine needs to open a run's spans."""

    trace_id: str | None = None
    """The explicit trace to join, 32 lowercase hex; ``None`` to use the ambient span."""
    parent_span_id: str | None = None
    """The remote parent span, 16 lowercase hex; ``None`` with a `trace_id` means the run
    span is a root span of that trace."""
    sampled: bool = True
    """Whether the remote parent was sampled (from ``traceparent``; explicit ids are)."""
    tags: tuple[str, ...] = ()
    """The run's tags, each once, in order."""
    attributes: dict[str, AttributeValue] = field(default_factory=dict)
    """Metadata, request-context and tag attributes, for the run span and, by default, every
    span of the run."""
    rejected: tuple[Rejection, ...] = ()
    """The values that were ignored, for the run span only."""
    hide_input: bool = False
    """Do not record ``spanflow.input``."""
    hide_output: bool = False
    """Do not record ``spanflow.output``."""

    def rejected_attribute(self) -> dict[str, AttributeValue]:
        """``{"spanflow.tracing.rejected": (...)}`` for the run span, or ``{}`` if none."""
        if not self.rejected:
            return {}
        return {REJECTED_ATTRIBUTE: tuple(rejection.as_attribute() for rejection in self.rejected)}


def resolve_tracing_options(
    options: TracingOptions | None,
    *,
    request_context: object = None,
    global_request_context_keys: Sequence[str] = (),
    redactor: Redactor | None = None,
    max_attribute_length: int = DEFAULT_MAX_ATTRIBUTE_LENGTH,
    logger: logging.Logger = _LOGGER,
) -> ResolvedTracing:
    """Check and resolve the tracing options of one run.

    Explicit ids win over ``traceparent`` when they yield a valid trace id; if they were all
    rejected, ``traceparent`` is used as if they had not been given. Explicit metadata wins over
    a request-context key that lands on the same attribute.

    Args:
        options: The run's options; ``None`` for none.
        request_context: Where `request_context_keys` are looked up (mapping, model, object).
        global_request_context_keys: Keys exported for every run, before the run's own.
        redactor: Applied to metadata and request-context values; `DEFAULT_REDACTOR` if
            omitted.
        max_attribute_length: Longest string attribute value, in characters.
        logger: Where each rejected value is logged once as a warning.

    Returns:
        The resolved options, invalid values left out and listed in ``rejected``.

    Raises:
        TracingOptionsError: A value was invalid and ``options.strict`` is true.
    """
    if options is None and not global_request_context_keys:
        # Most runs: nothing to check, look up or flatten (a fresh object: its dict is mutable).
        return ResolvedTracing()
    options = options or TracingOptions()
    redactor = redactor or DEFAULT_REDACTOR
    checker = _Checker(strict=bool(options.strict), logger=logger, redactor=redactor)

    trace_id, parent_span_id, sampled = _resolve_parent(options, checker)
    tags = _check_tags(options.tags, checker)
    metadata = _check_metadata(options.metadata, checker)
    keys = (
        *_check_keys(global_request_context_keys, "global_request_context_keys", checker, redactor),
        *_check_keys(options.request_context_keys, "request_context_keys", checker, redactor),
    )
    attributes = request_context_attributes(request_context, dict.fromkeys(keys), redactor=redactor)
    if metadata is not None:
        attributes.update(flatten_value(redactor.redact(metadata), METADATA_PREFIX))
    attributes.update(tag_attributes(tags))
    hide_input = checker.flag("hide_input", options.hide_input)
    hide_output = checker.flag("hide_output", options.hide_output)
    return ResolvedTracing(
        trace_id=trace_id,
        parent_span_id=parent_span_id,
        sampled=sampled,
        tags=tags,
        attributes=capped(limit_attribute_lengths(attributes, max_attribute_length), logger),
        rejected=tuple(checker.rejected),
        hide_input=hide_input,
        hide_output=hide_output,
    )


def merge_nested(
    parent: ResolvedTracing,
    child: TracingOptions | None,
    *,
    request_context: object = None,
    redactor: Redactor | None = None,
    max_attribute_length: int = DEFAULT_MAX_ATTRIBUTE_LENGTH,
    logger: logging.Logger = _LOGGER,
) -> ResolvedTracing:
    """Resolve the options of a run started inside another run (a nested workflow, an agent).

    The nested run is a child of the calling span, so the child's ``trace_id``,
    ``parent_span_id`` and ``traceparent`` are ignored (without a rejection) and the result
    carries no explicit ids. Tags are the parent's followed by the child's; metadata attributes
    are the parent's with the child's merged over them; hiding input or output is inherited
    (either side hiding hides). Only the child's own rejections are listed: the parent's belong
    to the parent's run span. Global request-context keys already reached the parent and are
    inherited through its attributes.

    Raises:
        TracingOptionsError: A child value was invalid and ``child.strict`` is true.
    """
    if child is None:
        return dataclasses.replace(
            parent,
            trace_id=None,
            parent_span_id=None,
            attributes=dict(parent.attributes),
            rejected=(),
        )
    if child.trace_id or child.parent_span_id or child.traceparent:
        logger.debug("spanflow tracing: a nested run ignores its own trace ids")
    own = resolve_tracing_options(
        dataclasses.replace(child, trace_id=None, parent_span_id=None, traceparent=None),
        request_context=request_context,
        redactor=redactor,
        max_attribute_length=max_attribute_length,
        logger=logger,
    )
    tags = tuple(dict.fromkeys((*parent.tags, *own.tags)))
    attributes = {
        **_without_tags(parent.attributes, parent.tags),
        **_without_tags(own.attributes, own.tags),
        **tag_attributes(tags),
    }
    already = sum(
        count
        for count in (
            parent.attributes.get(DROPPED_ATTRIBUTE),
            own.attributes.get(DROPPED_ATTRIBUTE),
        )
        if isinstance(count, int)
    )
    attributes.pop(DROPPED_ATTRIBUTE, None)
    return ResolvedTracing(
        tags=tags,
        attributes=capped(attributes, logger, already_dropped=already),
        rejected=own.rejected,
        hide_input=parent.hide_input or own.hide_input,
        hide_output=parent.hide_output or own.hide_output,
    )


def capped(
    attributes: Mapping[str, AttributeValue],
    logger: logging.Logger = _LOGGER,
    *,
    already_dropped: int = 0,
) -> dict[str, AttributeValue]:
    """`cap_user_attributes`, with one warning when this call leaves attributes out."""
    kept, cut = cap_user_attributes(attributes, already_dropped=already_dropped)
    if cut:
        logger.warning(
            "spanflow tracing: %d tag and metadata attributes left out: at most %d go on a "
            "span, so that spanflow's own attributes fit (the count is in %s)",
            cut,
            MAX_USER_ATTRIBUTES,
            DROPPED_ATTRIBUTE,
        )
    return kept


@dataclass(slots=True)
class _Checker:
    """Collects rejections for one resolution, or raises them under strict mode."""

    strict: bool
    logger: logging.Logger
    redactor: Redactor = DEFAULT_REDACTOR
    rejected: list[Rejection] = field(default_factory=list)

    def reject(self, error: TracingOptionsError) -> None:
        if self.strict:
            raise error
        rejection = Rejection.from_error(error, self.redactor)
        self.logger.warning(
            "spanflow tracing: ignoring invalid option %s (pass strict=True to raise instead)",
            rejection.as_attribute(),
        )
        self.rejected.append(rejection)

    def flag(self, name: str, value: object) -> bool:
        if isinstance(value, bool):
            return value
        self.reject(TracingOptionsError(name, value, "must be True or False"))
        # Hiding protects data: a truthy non-bool (hide_input="yes") is honoured, fail-closed.
        return bool(value)


def _resolve_parent(
    options: TracingOptions, checker: _Checker
) -> tuple[str | None, str | None, bool]:
    trace_id: str | None = None
    parent_span_id: str | None = None
    if options.trace_id is not None:
        try:
            trace_id = normalize_trace_id(options.trace_id)
        except TracingOptionsError as error:
            checker.reject(error)
    if options.parent_span_id is not None:
        try:
            parent_span_id = normalize_span_id(options.parent_span_id)
        except TracingOptionsError as error:
            checker.reject(error)
        if parent_span_id is not None and trace_id is None:
            reason = (
                "needs a valid trace_id: a span id means nothing without its trace"
                if options.trace_id is not None
                else "was given without trace_id: a span id means nothing without its trace"
            )
            checker.reject(InvalidSpanIdError("parent_span_id", options.parent_span_id, reason))
            parent_span_id = None
    if options.traceparent is None:
        return trace_id, parent_span_id, True
    if trace_id is not None:
        checker.reject(
            InvalidTraceparentError(
                "traceparent",
                options.traceparent,
                "was ignored: trace_id/parent_span_id were given too and take precedence",
            )
        )
        return trace_id, parent_span_id, True
    try:
        parsed = parse_traceparent(options.traceparent)
    except TracingOptionsError as error:
        checker.reject(error)
        return None, None, True
    return parsed.trace_id, parsed.span_id, parsed.sampled


def _check_tags(tags: object, checker: _Checker) -> tuple[str, ...]:
    items = _check_string_collection(tags, "tags", "tags=['beta']", checker)
    accepted: list[str] = []
    for index, tag in enumerate(items):
        if not isinstance(tag, str):
            reason = f"must be a string, got {type(tag).__name__}"
            checker.reject(TracingOptionsError(f"tags[{index}]", tag, reason))
        elif not tag.strip():
            checker.reject(TracingOptionsError(f"tags[{index}]", tag, "is empty"))
        else:
            # A tag becomes an attribute key: a credential in it is redacted like text.
            accepted.append(checker.redactor.redact_text(tag))
    return tuple(dict.fromkeys(accepted))


def _check_metadata(metadata: object, checker: _Checker) -> object | None:
    if metadata is None:
        return None
    if isinstance(metadata, Mapping | pydantic.BaseModel) or (
        dataclasses.is_dataclass(metadata) and not isinstance(metadata, type)
    ):
        return metadata
    reason = f"must be a mapping such as {{'user_id': 'u-1'}}, got {type(metadata).__name__}"
    checker.reject(TracingOptionsError("metadata", metadata, reason))
    return None


def _check_keys(keys: object, name: str, checker: _Checker, redactor: Redactor) -> tuple[str, ...]:
    items = _check_string_collection(keys, name, f"{name}=['user.id']", checker)
    accepted: list[str] = []
    for index, key in enumerate(items):
        if not isinstance(key, str):
            reason = f"must be a string, got {type(key).__name__}"
            checker.reject(TracingOptionsError(f"{name}[{index}]", key, reason))
        elif not key.strip():
            checker.reject(TracingOptionsError(f"{name}[{index}]", key, "is empty"))
        elif redactor.is_sensitive_path(key):
            reason = "names a credential, which is never exported"
            checker.reject(TracingOptionsError(f"{name}[{index}]", key, reason))
        else:
            accepted.append(key)
    return tuple(accepted)


def _check_string_collection(
    value: object, name: str, example: str, checker: _Checker
) -> tuple[object, ...]:
    """The items of a list-of-strings option; a lone string or a mapping is rejected whole."""
    if value is None:
        return ()
    if isinstance(value, str | bytes | bytearray):
        reason = f"must be a list of strings, not a single string: write {example}"
        checker.reject(TracingOptionsError(name, value, reason))
        return ()
    if isinstance(value, Sequence):
        return tuple(value)
    if isinstance(value, Set):
        # A set has no order; sort so the exported attributes are the same on every run.
        return tuple(sorted(value, key=str))
    reason = f"must be a list of strings, got {type(value).__name__}: write {example}"
    checker.reject(TracingOptionsError(name, value, reason))
    return ()


def _without_tags(
    attributes: Mapping[str, AttributeValue], tags: tuple[str, ...]
) -> dict[str, AttributeValue]:
    tag_keys = {TAGS_ATTRIBUTE, *(f"{TAG_PREFIX}.{tag}" for tag in tags)}
    return {key: value for key, value in attributes.items() if key not in tag_keys}
