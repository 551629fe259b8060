"""Metadata, request-context keys and tags as span attributes Jaeger can search.

Jaeger matches a search tag by exact string equality on one span and cannot look inside arrays
or JSON, so nested metadata is flattened to one attribute per leaf
(``{"user": {"id": "u-42"}}`` -> ``spanflow.metadata.user.id = "u-42"``), request-context keys
are looked up by literal key or dot path and land under the same prefix, and each tag becomes
its own boolean attribute ``spanflow.tag.<tag> = true`` next to the display-only
``spanflow.tags`` array. Everything here is pure (values in, attribute dicts out), except
that a leaf that cannot be rendered is dropped with a warning instead of failing the rest.

Limits: an attribute key is at most `MAX_ATTRIBUTE_KEY_LENGTH` characters (a 1 MB metadata key
or tag is cut like a long value, with a marker), and `cap_user_attributes` keeps at most
`MAX_USER_ATTRIBUTES` tag and metadata attributes, so that spanflow's own (run and workflow
ids, status, input, output, errors) always fit in the SDK's 128 per span.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Final

import pydantic
import pydantic_core
from opentelemetry.util.types import AttributeValue

from spanflow.errors import StoredError
from spanflow.tracing.redaction import Redactor, truncate

__all__ = [
    "DROPPED_ATTRIBUTE",
    "MAX_ATTRIBUTE_KEY_LENGTH",
    "MAX_USER_ATTRIBUTES",
    "METADATA_PREFIX",
    "TAGS_ATTRIBUTE",
    "TAG_PREFIX",
    "AttributeValue",
    "attribute_key",
    "cap_user_attributes",
    "error_type",
    "flatten_metadata",
    "flatten_value",
    "limit_attribute_lengths",
    "lookup_path",
    "request_context_attributes",
    "tag_attributes",
]

METADATA_PREFIX: Final = "spanflow.metadata"
"""Prefix of the attributes made from metadata and request-context keys."""

TAGS_ATTRIBUTE: Final = "spanflow.tags"
"""The attribute holding all tags of a run as a string array (display only)."""

TAG_PREFIX: Final = "spanflow.tag"
"""Prefix of the one boolean attribute per tag, ``spanflow.tag.<tag> = true`` (searchable)."""

MAX_ATTRIBUTE_KEY_LENGTH: Final = 256
"""Longest attribute key, in characters; longer ones are cut and end in a marker."""

MAX_USER_ATTRIBUTES: Final = 64
"""Most tag and metadata attributes on one span (``spanflow.tags`` itself not counted). The
SDK keeps 128 attributes per span and drops the oldest beyond that: the other 64 are room
for spanflow's own (``spanflow.run.id``, ``spanflow.workflow.id``, status, input, output,
``error.type``, the ``gen_ai.*`` facts of agent spans)."""

DROPPED_ATTRIBUTE: Final = "spanflow.attributes.dropped"
"""How many tag and metadata attributes were left out by `cap_user_attributes`."""

_LOGGER: Final = logging.getLogger("spanflow.tracing")
_INT64_MIN: Final = -(2**63)
_INT64_MAX: Final = 2**63 - 1
_MAX_DEPTH: Final = 32
_SCALAR_TYPES: Final = (str, bool, int, float)
_LEAVES: Final = (str, bytes, bytearray, bool, int, float, complex)


def flatten_metadata(
    metadata: Mapping[str, object], prefix: str = METADATA_PREFIX
) -> dict[str, AttributeValue]:
    """Flatten metadata to one span attribute per leaf, keys joined with dots.

    Leaves become attributes as follows: ``str``, ``bool`` and ``int`` keep their type (an int
    outside the 64-bit range OTLP can carry becomes a string); ``float`` is kept (searching for
    one in Jaeger is unreliable); ``None`` is dropped; a list or tuple of scalars of one type
    becomes a tuple of that type (shown by Jaeger, not searchable), any other list a JSON
    string. Nested mappings, pydantic models and dataclasses are flattened like dicts (by field
    name); any other value is converted the way pydantic serialises it to JSON (dates to ISO
    strings, enums to their values, sets to lists) and then follows the same rules. Non-string
    keys are converted with `str`; empty keys are skipped.

    Args:
        metadata: The metadata to flatten.
        prefix: The prefix of every attribute key.

    Returns:
        The attributes, in the metadata's order.
    """
    return flatten_value(metadata, prefix)


def flatten_value(value: object, key: str) -> dict[str, AttributeValue]:
    """Flatten one value to attributes under ``key``, by the rules of `flatten_metadata`.

    A scalar gives ``{key: value}``, a mapping one attribute per leaf under ``key.``, ``None``
    nothing at all.
    """
    attributes: dict[str, AttributeValue] = {}
    _flatten_into(attributes, key, value, set(), 0)
    return attributes


def lookup_path(source: object, key: str) -> tuple[bool, object]:
    """Find ``key`` in ``source``: first as a literal key, then as a dot path.

    ``"flat.key"`` is first looked up as one key of a mapping; if that is missing, the key is
    split at dots and each segment walks one level: a mapping item, a pydantic model field, a
    list index (``"items.0.id"``) or an object's public attribute (names starting with ``_``
    and methods are never read). Each level is looked up by its segment only, so a dotted key
    nested below the top level is not found.

    Args:
        source: The value to search, typically a request context.
        key: The literal key or dot path.

    Returns:
        ``(True, value)`` when found (the value may be ``None``), else ``(False, None)``.
    """
    found, value = _child(source, key)
    if found or "." not in key:
        return found, value
    current = source
    for segment in key.split("."):
        found, current = _child(current, segment)
        if not found:
            return False, None
    return True, current


def request_context_attributes(
    source: object,
    keys: Iterable[str],
    *,
    redactor: Redactor | None = None,
    prefix: str = METADATA_PREFIX,
) -> dict[str, AttributeValue]:
    """Turn the listed request-context keys into attributes, ``<prefix>.<key>`` each.

    Each key is found with `lookup_path`; missing keys are skipped, and a mapping found under a
    key is flattened below it (``user`` -> ``spanflow.metadata.user.id``). Only listed keys are
    ever read.

    Args:
        source: The request context (a mapping, a pydantic model or any object); ``None``
            gives no attributes.
        keys: The keys to export.
        redactor: When given, keys naming a credential (in any dot segment) are skipped and
            the values found are redacted before flattening.
        prefix: The prefix of every attribute key.
    """
    attributes: dict[str, AttributeValue] = {}
    if source is None:
        return attributes
    for key in keys:
        if redactor is not None and redactor.is_sensitive_path(key):
            continue
        found, value = lookup_path(source, key)
        if not found:
            continue
        if redactor is not None:
            value = redactor.redact(value)
        _flatten_into(attributes, f"{prefix}.{key}", value, set(), 0)
    return attributes


def tag_attributes(tags: Iterable[str]) -> dict[str, AttributeValue]:
    """Turn tags into ``spanflow.tags`` (all tags, in order) and ``spanflow.tag.<tag> = True``.

    Duplicates are kept once; no tags give no attributes.
    """
    unique = tuple(dict.fromkeys(tags))
    if not unique:
        return {}
    attributes: dict[str, AttributeValue] = {TAGS_ATTRIBUTE: unique}
    for tag in unique:
        attributes[attribute_key(f"{TAG_PREFIX}.{tag}")] = True
    return attributes


def attribute_key(key: str) -> str:
    """``key`` cut to `MAX_ATTRIBUTE_KEY_LENGTH` characters, with a marker when cut."""
    return key if len(key) <= MAX_ATTRIBUTE_KEY_LENGTH else truncate(key, MAX_ATTRIBUTE_KEY_LENGTH)


def cap_user_attributes(
    attributes: Mapping[str, AttributeValue],
    *,
    already_dropped: int = 0,
    limit: int = MAX_USER_ATTRIBUTES,
) -> tuple[dict[str, AttributeValue], int]:
    """Keep at most ``limit`` tag and metadata attributes; count the others.

    Tag flags (``spanflow.tag.*``) are kept first, then the rest in order; ``spanflow.tags``
    (one attribute listing every tag) is always kept and not counted. When anything is left
    out, `DROPPED_ATTRIBUTE` says how many in all (``already_dropped`` included, and any count
    already in ``attributes``).

    Returns:
        The kept attributes, and how many this call left out.
    """
    prior = attributes.get(DROPPED_ATTRIBUTE)
    dropped = already_dropped + (prior if isinstance(prior, int) else 0)
    counted = [key for key in attributes if key not in (TAGS_ATTRIBUTE, DROPPED_ATTRIBUTE)]
    if len(counted) <= limit:
        kept = {k: v for k, v in attributes.items() if k != DROPPED_ATTRIBUTE}
        cut = 0
    else:
        tags_first = sorted(counted, key=lambda key: not key.startswith(f"{TAG_PREFIX}."))
        chosen = set(tags_first[:limit])
        kept = {k: v for k, v in attributes.items() if k in chosen or k == TAGS_ATTRIBUTE}
        cut = len(counted) - limit
    if dropped + cut:
        kept[DROPPED_ATTRIBUTE] = dropped + cut
    return kept, cut


def limit_attribute_lengths(
    attributes: Mapping[str, AttributeValue], limit: int
) -> dict[str, AttributeValue]:
    """Return ``attributes`` with every string, and every string in an array, truncated, and
    every key cut to `MAX_ATTRIBUTE_KEY_LENGTH`."""
    limited: dict[str, AttributeValue] = {}
    for raw_key, value in attributes.items():
        key = attribute_key(raw_key)
        if isinstance(value, str):
            limited[key] = truncate(value, limit)
        elif isinstance(value, tuple) and value and isinstance(value[0], str):
            limited[key] = tuple(truncate(str(item), limit) for item in value)
        else:
            limited[key] = value
    return limited


def _flatten_into(
    out: dict[str, AttributeValue], key: str, value: object, active: set[int], depth: int
) -> None:
    if value is None:
        return
    if isinstance(value, _SCALAR_TYPES):
        try:
            out[attribute_key(key)] = _scalar(value)
        except ValueError as error:  # an int of more than 4300 digits has no str()
            _LOGGER.warning(
                "spanflow tracing: dropping the attribute %s: its value cannot be rendered (%s)",
                attribute_key(key),
                error,
            )
        return
    if depth >= _MAX_DEPTH:
        out[attribute_key(key)] = "[too deep]"
        return
    if isinstance(value, Mapping):
        marker = id(value)
        if marker in active:
            out[attribute_key(key)] = "[circular]"
            return
        active.add(marker)
        for raw_name, item in value.items():
            name = raw_name if isinstance(raw_name, str) else str(raw_name)
            if name:
                _flatten_into(out, f"{key}.{name}", item, active, depth + 1)
        active.discard(marker)
        return
    if isinstance(value, list | tuple):
        out[attribute_key(key)] = _sequence(value)
        return
    # Models, dataclasses, enums, dates, sets, ...: pydantic's JSON view holds only JSON types,
    # so this recursion ends at the next level.
    _flatten_into(out, key, _jsonable(value), active, depth + 1)


def _scalar(value: str | bool | int | float) -> AttributeValue:
    # bool before int: True is an int, and must stay a bool.
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return int(value) if _INT64_MIN <= value <= _INT64_MAX else str(value)
    if isinstance(value, float):
        return float(value)
    return str(value)  # a str subclass (an enum member, say) as a plain str


def _sequence(items: Sequence[object]) -> AttributeValue:
    """A homogeneous tuple for a list of one scalar type, else the list as JSON."""
    homogeneous = _homogeneous(items)
    if homogeneous is not None:
        return homogeneous
    converted = _jsonable(list(items))  # enum members to values, dates to strings, ...
    if isinstance(converted, list):
        homogeneous = _homogeneous(converted)
        if homogeneous is not None:
            return homogeneous
    return _json(converted)


def _homogeneous(items: Sequence[object]) -> AttributeValue | None:
    if not items:
        return ()
    kind = type(items[0])
    if kind not in _SCALAR_TYPES or any(type(item) is not kind for item in items):
        return None
    # Every item has exactly type `kind`; the isinstance filters only inform the type checker.
    if kind is str:
        return tuple(item for item in items if isinstance(item, str))
    if kind is bool:
        return tuple(item for item in items if isinstance(item, bool))
    if kind is float:
        return tuple(item for item in items if isinstance(item, float))
    ints = tuple(item for item in items if isinstance(item, int))
    if all(_INT64_MIN <= item <= _INT64_MAX for item in ints):
        return ints
    return None


def _jsonable(value: object) -> object:
    try:
        return pydantic_core.to_jsonable_python(value, fallback=str, by_alias=False)
    except Exception:  # circular data, undecodable bytes, a failing __str__ ...
        return _json(value)


def _json(value: object) -> str:
    try:
        return pydantic_core.to_json(value, fallback=str, by_alias=False).decode()
    except Exception:
        return f"<unrepresentable {type(value).__name__}>"


def _child(container: object, name: str) -> tuple[bool, object]:
    """One level of `lookup_path`: ``container``'s item, field or attribute ``name``."""
    if isinstance(container, Mapping):
        if name in container:
            return True, container[name]
        return False, None
    if isinstance(container, str | bytes | bytearray):
        return False, None
    if isinstance(container, Sequence):
        if name.isascii() and name.isdigit():
            index = int(name)
            if index < len(container):
                return True, container[index]
        return False, None
    if isinstance(container, pydantic.BaseModel):
        extra = container.model_extra
        if extra is not None and name in extra:
            return True, extra[name]
    elif _is_mapping_like(container):
        try:
            if name in container:  # type: ignore[operator]
                return True, container[name]  # type: ignore[index]
        except Exception:  # a mapping-like object that does not take string keys
            pass
    return _attribute(container, name)


def _is_mapping_like(value: object) -> bool:
    kind = type(value)
    return hasattr(kind, "__getitem__") and hasattr(kind, "__contains__")


def _attribute(container: object, name: str) -> tuple[bool, object]:
    # Scalars have attributes too (``(42).real``); a path through a leaf is simply missing.
    if not name or name.startswith("_") or container is None or isinstance(container, _LEAVES):
        return False, None
    try:
        value = getattr(container, name)
    except Exception:  # AttributeError, or a property that raised
        return False, None
    if inspect.isroutine(value):
        return False, None
    return True, value


def error_type(error: BaseException) -> str:
    """``error.type``: the exception's qualified class name (builtins unqualified)."""
    if isinstance(error, StoredError):
        return error.name
    cls = type(error)
    module = cls.__module__
    return cls.__qualname__ if module == "builtins" else f"{module}.{cls.__qualname__}"
