"""Redaction and truncation: what runs before any user data is put on a span.

A `Redactor` replaces the values of credential-like keys (``password``, ``api_key``,
``Authorization``, ...) by ``[REDACTED]`` wherever they appear in a value, in any case or
separator style, and turns the value into plain JSON-able data without touching the input.
`truncate` cuts long text with a visible marker, and `to_attribute_json` combines the two into
the compact JSON string spanflow sets as ``spanflow.input`` / ``spanflow.output``.
`strip_credentials` drops credential-like keys from a request context before it is persisted.
These functions run for every step, so key matching is cached and free of regular expressions.
"""

from __future__ import annotations

import dataclasses
import enum
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Final, cast

import pydantic
import pydantic_core

from spanflow.errors import SpanflowError

__all__ = [
    "DEFAULT_MAX_ATTRIBUTE_LENGTH",
    "DEFAULT_REDACTOR",
    "DEFAULT_SENSITIVE_KEYS",
    "REDACTED",
    "RedactionError",
    "Redactor",
    "strip_credentials",
    "to_attribute_json",
    "truncate",
]


class RedactionError(SpanflowError):
    """A `Redactor`'s own ``function`` raised: the value it was redacting is not recorded.

    The user's code failed, not tracing: the never-fail guard always logs it (never re-raises).
    """


DEFAULT_SENSITIVE_KEYS: Final[tuple[str, ...]] = (
    "password",
    "token",
    "secret",
    "api key",
    "authorization",
    "bearer",
    "jwt",
    "credential",
    "client secret",
    "private key",
    "refresh",
    "ssn",
    "cookie",
    "session",
)
"""Key patterns whose values are always redacted, written in any case or separator style."""

REDACTED: Final = "[REDACTED]"
"""What a redacted value is replaced with by default."""

DEFAULT_MAX_ATTRIBUTE_LENGTH: Final = 8192
"""Default length limit, in characters, of an input, output or payload attribute."""

_MAX_DEPTH: Final = 64
_MAX_MEMO: Final = 8192
_MAX_MEMO_KEY_SETS: Final = 1024
_MAX_MEMO_KEY_SET: Final = 64
_PLAIN: Final = frozenset({str, int, float, bool})
_WHOLE_WORD_MAX_LENGTH: Final = 3
_SENTINEL_CIRCULAR: Final = "[circular]"
_SENTINEL_TOO_DEEP: Final = "[too deep]"

# Token *counts* are not secrets: "max_tokens", "input_tokens", "tokens_used", "token_count",
# "completion_tokens_details" (a dict of counts) and "tokenizer" are everyday LLM keys that the
# "token" pattern would otherwise hide. An occurrence of "token" is a count when it is followed
# by "s" at the end of the key, or by one of these words (after an optional plural "s")...
_TOKEN_COUNT_WORDS: Final = (
    "count",
    "usage",
    "used",
    "limit",
    "budget",
    "remaining",
    "total",
    "per",
    "details",
)
# ...unless it is preceded by a word that makes it a credential again ("access_tokens",
# "api_tokens", "id_tokens"). Erring towards redaction on these is the safe direction.
_CREDENTIAL_QUALIFIERS: Final = ("access", "auth", "api", "id", "oauth", "csrf", "xsrf", "personal")


@dataclass(frozen=True, slots=True)
class Redactor:
    """Replaces the values of sensitive keys, everywhere in a value, by a placeholder.

    A key is normalised by lowercasing it and removing every character that is not a letter or
    digit (``"X-Api-Key"`` -> ``"xapikey"``); it is sensitive when a normalised pattern occurs
    in it (``"apikey"``). Patterns of three characters or fewer (``ssn``, ``jwt``) must match a
    whole word of the key instead, so ``className`` and ``business_name`` are not mistaken for
    ``ssn``. Token counts (``input_tokens``, ``max_tokens``, ``token_count``) are not
    sensitive, see `is_sensitive`.
    """

    extra_keys: tuple[str, ...] = ()
    """Patterns added to `DEFAULT_SENSITIVE_KEYS` (or used alone, see `use_default_keys`)."""
    function: Callable[[str, object], object] | None = None
    """Called as ``function(key, value)`` for every entry whose key is not sensitive; what it
    returns is used (and walked) instead of the value. Return the value itself to keep it.
    It cannot un-redact a sensitive key: those are replaced before it is called."""
    replacement: str = REDACTED
    """What replaces a sensitive value."""
    use_default_keys: bool = True
    """Whether `DEFAULT_SENSITIVE_KEYS` apply; set False to match `extra_keys` only."""
    _patterns: tuple[str, ...] = field(init=False, repr=False, compare=False)
    _verdicts: dict[str, bool] = field(init=False, repr=False, compare=False)
    _key_sets: dict[frozenset[str], bool] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        extra_keys: object = self.extra_keys  # untyped callers do pass a lone string
        if isinstance(extra_keys, str):
            # A lone string would otherwise be spread into one pattern per character.
            raise TypeError("Redactor.extra_keys must be a tuple of strings, not a string")
        defaults = DEFAULT_SENSITIVE_KEYS if self.use_default_keys else ()
        sources = (*defaults, *self.extra_keys)
        patterns = dict.fromkeys(p for p in map(_normalise, sources) if p)
        object.__setattr__(self, "_patterns", tuple(patterns))
        object.__setattr__(self, "_verdicts", {})
        object.__setattr__(self, "_key_sets", {})

    def is_sensitive(self, key: object) -> bool:
        """Return whether the value under ``key`` must be redacted.

        An occurrence of ``token`` does not count when it names a token *count*: followed by a
        plural ``s`` that ends the key (``max_tokens``), or by a count word such as ``count``,
        ``used``, ``usage``, ``limit``, ``total`` or ``details`` (``tokens_used``,
        ``token_count``), or part of ``tokenizer``; unless a credential word such as
        ``access``, ``api``, ``auth`` or ``id`` comes right before it (``access_tokens`` stays
        sensitive).
        """
        text = key if isinstance(key, str) else str(key)
        # A per-redactor memo: the same few keys come back on every step, and a dict lookup
        # is cheaper than an lru_cache keyed on (key, patterns), which re-hashes the patterns.
        verdict = self._verdicts.get(text)
        if verdict is None:
            if len(self._verdicts) >= _MAX_MEMO:
                self._verdicts.clear()
            verdict = self._verdicts[text] = _matches(text, self._patterns)
        return verdict

    def any_sensitive(self, keys: frozenset[str]) -> bool:
        """Return whether any of ``keys`` is sensitive (`is_sensitive`), memoised per key set.

        Rendered payloads of one workflow repeat the same few key sets (a step's wire keys and
        its schema's fields), so one hash of the set replaces a method call per key. Large sets
        (a mapping keyed by ids, say) are not kept: they rarely come back and hold much.
        """
        verdict = self._key_sets.get(keys)
        if verdict is None:
            verdict = any(map(self.is_sensitive, keys))
            if len(keys) <= _MAX_MEMO_KEY_SET:
                if len(self._key_sets) >= _MAX_MEMO_KEY_SETS:
                    self._key_sets.clear()
                self._key_sets[keys] = verdict
        return verdict

    def is_sensitive_path(self, path: str) -> bool:
        """Return whether a dotted key path (``"auth.token"``) names a sensitive value anywhere."""
        return self.is_sensitive(path) or any(self.is_sensitive(part) for part in path.split("."))

    def redact(self, value: object) -> object:
        """Return a redacted, JSON-able copy of ``value``; the input is never mutated.

        Mappings become dicts with string keys; lists, tuples and sets become lists; pydantic
        models are dumped in JSON mode and dataclasses read field by field, then walked like
        dicts; enums become their values; other objects become what pydantic would serialise
        them as (ISO dates, UUID strings, ...), or ``str(value)``. Circular references become
        ``"[circular]"`` and nesting deeper than 64 levels ``"[too deep]"``.
        """
        return self._walk(value, set(), 0)

    def _walk(self, value: object, active: set[int], depth: int) -> object:
        kind = type(value)
        if value is None or kind in _PLAIN:
            return value
        if depth >= _MAX_DEPTH:
            return _SENTINEL_TOO_DEEP
        if kind is dict or kind is list or kind is tuple:  # the common case, before any ABC
            return self._walk_container(value, active, depth)
        if isinstance(value, bool | int | float | str):
            return value
        if isinstance(value, enum.Enum):
            return self._walk(value.value, active, depth + 1)
        if isinstance(value, pydantic.BaseModel):
            return self._walk(_dump_model(value), active, depth + 1)
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            fields: dict[object, object] = {
                f.name: getattr(value, f.name) for f in dataclasses.fields(value)
            }
            return self._walk_mapping(fields, active, depth)
        if isinstance(value, Mapping | list | tuple | set | frozenset):
            return self._walk_container(value, active, depth)
        return _to_jsonable(value)

    def _walk_container(self, value: object, active: set[int], depth: int) -> object:
        marker = id(value)
        if marker in active:
            return _SENTINEL_CIRCULAR
        active.add(marker)
        try:
            if isinstance(value, Mapping):
                return self._walk_mapping(value, active, depth)
            items = cast("Iterable[object]", value)  # only lists, tuples and sets get here
            return [self._walk(item, active, depth + 1) for item in items]
        finally:
            active.discard(marker)

    def _walk_mapping(
        self, value: Mapping[object, object], active: set[int], depth: int
    ) -> dict[str, object]:
        result: dict[str, object] = {}
        for raw_key, item in value.items():
            key = raw_key if isinstance(raw_key, str) else str(raw_key)
            if self.is_sensitive(key):
                result[key] = self.replacement
                continue
            if self.function is not None:
                try:
                    item = self.function(key, item)
                except Exception as error:
                    raise RedactionError(f"the redactor function raised for key {key!r}") from error
            result[key] = self._walk(item, active, depth + 1)
        return result


_JSON_KEY = re.compile(r'"((?:[^"\\]|\\.)*)":')
"""A key in compact JSON (pydantic's `to_json`): a string directly followed by a colon."""
_UNESCAPED_JSON_KEY = re.compile(r'"([^"]*)":')
"""`_JSON_KEY` for text without a backslash (most payloads): the escape branch can never match
there, so both find exactly the same keys, this one several times faster."""


def truncate(text: str, limit: int) -> str:
    """Cut ``text`` to at most ``limit`` characters, ending with a visible marker.

    The marker says how many characters were cut: ``"abc…[truncated 1234 chars]"``; it counts
    towards the limit. Text within the limit is returned unchanged. When the limit is too small
    to hold the marker, the text is cut to the limit without one.

    Raises:
        ValueError: ``limit`` is negative.
    """
    if limit < 0:
        raise ValueError(f"truncate: limit must be 0 or more, got {limit}")
    length = len(text)
    if length <= limit:
        return text
    keep = limit
    # The marker's length depends on how much is cut, which depends on the marker's length:
    # shrink `keep` until both fit (two rounds at most, as the digit count barely moves).
    while keep >= 0:
        marker = f"…[truncated {length - keep} chars]"
        if keep + len(marker) <= limit:
            return text[:keep] + marker
        keep = limit - len(marker)
    return text[:limit]


def to_attribute_json(
    value: object,
    *,
    redactor: Redactor | None = None,
    limit: int = DEFAULT_MAX_ATTRIBUTE_LENGTH,
) -> str:
    """Redact ``value``, render it as compact JSON and truncate it: a span attribute value.

    Args:
        value: Any value (an input, output or event payload).
        redactor: The redactor to apply; `DEFAULT_REDACTOR` when omitted.
        limit: The maximum length of the result, marker included.

    Returns:
        Compact JSON (non-ASCII kept as is), cut to ``limit`` characters with a marker.
    """
    redactor = redactor or DEFAULT_REDACTOR
    if redactor.function is None:
        # The common case, at C speed: render first, and walk the value only when one of its
        # keys is sensitive. Every key of compact JSON is a string directly followed by `":`,
        # so none can hide; a string *value* that looks like a key only costs the slow path.
        try:
            text = pydantic_core.to_json(value, fallback=str).decode()
        except (ValueError, TypeError):  # circular data and the like: the walk copes
            text = None
        if text is not None and not redactor.any_sensitive(_json_keys(text)):
            return text if len(text) <= limit else truncate(text, limit)
    text = pydantic_core.to_json(redactor.redact(value), fallback=str).decode()
    return truncate(text, limit)


def _json_keys(text: str) -> frozenset[str]:
    """The keys of compact JSON text (see `_JSON_KEY`)."""
    pattern = _JSON_KEY if "\\" in text else _UNESCAPED_JSON_KEY
    return frozenset(pattern.findall(text))


def strip_credentials(
    mapping: Mapping[str, object], *, redactor: Redactor | None = None
) -> dict[str, object]:
    """Return a copy of ``mapping`` without its credential-like top-level keys.

    Unlike redaction, the entries are dropped, not masked: used before a request context is
    persisted, so a credential never reaches the store at all.
    """
    checker = redactor or DEFAULT_REDACTOR
    return {key: value for key, value in mapping.items() if not checker.is_sensitive(key)}


@lru_cache(maxsize=4096)
def _normalise(key: str) -> str:
    return "".join(char for char in key.lower() if char.isalnum())


@lru_cache(maxsize=8192)
def _words(key: str) -> frozenset[str]:
    """Split a key into lowercase words at separators and camelCase humps (``APIKey``)."""
    words: list[str] = []
    current: list[str] = []
    previous = ""
    for index, char in enumerate(key):
        if not char.isalnum():
            if current:
                words.append("".join(current))
                current = []
            previous = ""
            continue
        if char.isupper() and current:
            following = key[index + 1] if index + 1 < len(key) else ""
            # "userId" splits before I; "APIKey" splits before K (an acronym ends where a
            # capital is followed by a lowercase letter).
            if not previous.isupper() or following.islower():
                words.append("".join(current))
                current = []
        current.append(char.lower())
        previous = char
    if current:
        words.append("".join(current))
    return frozenset(words)


def _matches(key: str, patterns: tuple[str, ...]) -> bool:
    normalised = _normalise(key)
    for pattern in patterns:
        if len(pattern) <= _WHOLE_WORD_MAX_LENGTH:
            if pattern in _words(key):
                return True
        elif pattern == "token":
            if _has_credential_token(normalised):
                return True
        elif pattern in normalised:
            return True
    return False


def _has_credential_token(normalised: str) -> bool:
    start = normalised.find("token")
    while start != -1:
        if not _is_token_count(normalised, start):
            return True
        start = normalised.find("token", start + 1)
    return False


def _is_token_count(normalised: str, start: int) -> bool:
    before, rest = normalised[:start], normalised[start + len("token") :]
    if before.endswith(_CREDENTIAL_QUALIFIERS):
        return False
    if rest.startswith("iz"):  # tokenizer, tokenize, tokenization
        return True
    tail = rest.removeprefix("s")
    if tail == "":
        return rest == "s"
    return tail.startswith(_TOKEN_COUNT_WORDS)


def _dump_model(model: pydantic.BaseModel) -> object:
    try:
        return model.model_dump(mode="json")
    except Exception:  # a field pydantic cannot serialise: fall back to str() for it
        return _to_jsonable(model)


def _to_jsonable(value: object) -> object:
    try:
        return pydantic_core.to_jsonable_python(value, fallback=str, by_alias=False)
    except Exception:  # circular data, undecodable bytes, a failing __str__ ...
        return _safe_str(value)


def _safe_str(value: object) -> str:
    try:
        return str(value)
    except Exception:
        return f"<unrepresentable {type(value).__name__}>"


# Built last: constructing a Redactor uses the private helpers above.
DEFAULT_REDACTOR: Final = Redactor()
"""The redactor used when none is configured: `DEFAULT_SENSITIVE_KEYS`, ``[REDACTED]``."""
