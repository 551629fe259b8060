"""Redaction and truncation: what runs before any user data is put on a span or stored.

A `Redactor` replaces the values of credential-like keys (``password``, ``api_key``,
``Authorization``, ...) by ``[REDACTED]`` wherever they appear in a value, in any case or
separator style, and secret-looking strings (API keys, JWTs, bearer tokens, URL passwords, AWS
key ids, private keys) under any key; it turns the value into plain JSON-able data without
touching the input. `truncate` cuts long text with a visible marker, and `to_attribute_json`
combines the two into the compact JSON string spanflow sets as ``spanflow.input`` /
``spanflow.output``. `redact_error_message` and `redact_stack` do the same for an error's text
(``password=...``, ``"api_key": "..."``, ``Bearer ...``), for spans and for what the engine
stores and streams. `strip_credentials` drops credential-like keys, at any depth, from a
request context before it is persisted.

Cost is bounded by what is kept, not by what is given: a value whose JSON is surely longer than
the limit is walked only as far as the limit reaches (a 10 MB output costs what 8 KiB do), and
text is scanned for secrets only a little beyond where it is cut. These functions run for every
step, so key verdicts are cached and the common case (no credential key, no secret-looking
text) is one C-speed rendering and two scans of the kept text; with a run's `RenderMemo`, a
text the run rendered lately is not scanned again.
"""

from __future__ import annotations

import dataclasses
import enum
import itertools
import re
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, cast

import pydantic
import pydantic_core

from spanflow.errors import SpanflowError
from spanflow.tracing._key_rules import (
    COUNT,
    MAX_MEMO_KEY_LENGTH,
    REPLACED,
    SHOWN,
    classify,
    normalise,
)
from spanflow.tracing._render_memo import COUNT_TEXT, COUNTS, SENSITIVE, TRIGGER, RenderMemo
from spanflow.tracing._secret_text import has_trigger, scrub_key_values, scrub_values

__all__ = [
    "DEFAULT_MAX_ATTRIBUTE_LENGTH",
    "DEFAULT_MAX_ERROR_LENGTH",
    "DEFAULT_MAX_STACK_LENGTH",
    "DEFAULT_REDACTOR",
    "DEFAULT_SENSITIVE_KEYS",
    "REDACTED",
    "RedactionError",
    "Redactor",
    "redact_error_message",
    "redact_stack",
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
    "passwd",
    "pass",
    "passphrase",
    "pwd",
    "token",
    "secret",
    "api key",
    "authorization",
    "auth",
    "bearer",
    "jwt",
    "credential",
    "creds",
    "client secret",
    "private key",
    "refresh",
    "signature",
    "ssn",
    "cookie",
    "session",
    "otp",
    "pin",
    "cvv",
    "cvc",
)
"""Key patterns whose values are always redacted, written in any case or separator style.

Patterns of four characters or fewer (``pass``, ``auth``, ``pin``, ``otp``) match a whole word
of a key only, so ``x-auth-user`` and ``db_pass`` are sensitive but ``author`` and
``passenger`` are not."""

REDACTED: Final = "[REDACTED]"
"""What a redacted value is replaced with by default."""

DEFAULT_MAX_ATTRIBUTE_LENGTH: Final = 8192
"""Default length limit, in characters, of an input, output or payload attribute."""

DEFAULT_MAX_ERROR_LENGTH: Final = 4096
"""Default length limit, in characters, of an error message on a span or in a snapshot."""

DEFAULT_MAX_STACK_LENGTH: Final = 16384
"""Default length limit, in characters, of a stack trace on a span or in a snapshot."""

_MAX_DEPTH: Final = 64
_MAX_MEMO: Final = 8192
_MAX_MEMO_KEY_SETS: Final = 1024
_MAX_MEMO_KEY_SET: Final = 64
_PLAIN: Final = frozenset({int, float, bool})
_SENTINEL_CIRCULAR: Final = "[circular]"
_SENTINEL_TOO_DEEP: Final = "[too deep]"
_SECRET_MARGIN: Final = 4096
"""How far past the cut text is still scanned, so that a secret straddling the cut is
redacted whole (a JWT or a 4096-bit private key fits)."""
_PROBE_NODES: Final = 256
# isinstance() tuples built once: `int | float` written in a hot function builds a union on
# every call.
_SEQUENCES: Final = (list, tuple)
_NUMBERS: Final = (int, float)
_COLLECTIONS: Final = (list, tuple, set, frozenset)
_PREVIEW_LENGTH: Final = 200

_NUMBER: Final = re.compile(r"-?[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")


@dataclass(slots=True)
class _Walk:
    """The state of one `Redactor` walk: the containers being walked, and what may still be
    produced (``None``: everything)."""

    budget: int | None
    """Characters of JSON still wanted; a lower bound of what has been produced is taken off."""
    active: set[int] = field(default_factory=set)
    cut: bool = False
    """Whether something was left out because the budget ran out."""

    def spend(self, characters: int) -> None:
        if self.budget is not None:
            self.budget -= characters

    def exhausted(self) -> bool:
        if self.budget is None or self.budget > 0:
            return False
        self.cut = True
        return True


@dataclass(frozen=True, slots=True)
class Redactor:
    """Replaces the values of sensitive keys, and secret-looking strings, by a placeholder.

    A key is normalised by lowercasing it and removing every character that is not a letter or
    digit (``"X-Api-Key"`` -> ``"xapikey"``); it is sensitive when a normalised pattern occurs
    in it (``"apikey"``). Patterns of four characters or fewer (``ssn``, ``jwt``, ``pass``,
    ``auth``) must match a whole word of the key instead, so ``className`` and ``author`` are
    not mistaken for ``ssn`` and ``auth``. Token counts (``input_tokens``, ``max_tokens``,
    ``token_count``) are not sensitive while they hold numbers; text under them is replaced,
    see `is_sensitive`. Strings are scanned for secret-looking values whatever their key (see
    `scan_values`).
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
    scan_values: bool = True
    """Replace secret-looking values under any key: OpenAI-style ``sk-...`` keys (and Stripe,
    GitHub, Slack, Google API keys), JWTs, the token after ``Bearer``, ``Basic`` credentials,
    the password in a URL or DSN (user and host are kept), AWS access key ids and private key
    blocks."""
    value_patterns: tuple[str, ...] = ()
    """More regular expressions for secret-looking values: each match, in any string, is
    replaced. They cost a walk of every value (the rendered JSON cannot be checked for them)."""
    _patterns: tuple[str, ...] = field(init=False, repr=False, compare=False)
    _extra_values: tuple[re.Pattern[str], ...] = field(init=False, repr=False, compare=False)
    _walks_always: bool = field(init=False, repr=False, compare=False)
    """Whether every value must be walked: the rendered JSON cannot be checked instead."""
    _verdicts: dict[str, int] = field(init=False, repr=False, compare=False)
    _key_sets: dict[frozenset[str], tuple[bool, tuple[str, ...]]] = field(
        init=False, repr=False, compare=False
    )
    _key_starts: dict[str, str] = field(init=False, repr=False, compare=False)
    """Event payload keys known to be shown identifiers holding no trigger, each with its
    JSON start (``'"stepName":'``), for `spliced_json`: the same few come in every event."""

    def __post_init__(self) -> None:
        for name in ("extra_keys", "value_patterns"):
            given: object = getattr(self, name)  # untyped callers do pass a lone string
            if isinstance(given, str):
                # A lone string would otherwise be spread into one pattern per character.
                raise TypeError(f"Redactor.{name} must be a tuple of strings, not a string")
        defaults = DEFAULT_SENSITIVE_KEYS if self.use_default_keys else ()
        sources = (*defaults, *self.extra_keys)
        patterns = dict.fromkeys(p for p in map(normalise, sources) if p)
        object.__setattr__(self, "_patterns", tuple(patterns))
        object.__setattr__(self, "_extra_values", tuple(map(re.compile, self.value_patterns)))
        walks = self.function is not None or bool(self._extra_values)
        object.__setattr__(self, "_walks_always", walks)
        object.__setattr__(self, "_verdicts", {})
        object.__setattr__(self, "_key_sets", {})
        object.__setattr__(self, "_key_starts", {})

    def is_sensitive(self, key: object) -> bool:
        """Return whether the value under ``key`` must be redacted, whatever it is.

        An occurrence of ``token`` does not count when it names a token *count*: followed by a
        plural ``s`` that ends the key (``max_tokens``), or by a count word such as ``count``,
        ``used``, ``usage``, ``limit``, ``total``, ``remaining`` or ``details``
        (``tokens_used``, ``token_count``), or part of ``tokenizer``; unless a credential word
        such as ``access``, ``api``, ``auth`` or ``id`` comes right before it (``access_tokens``
        stays sensitive). A count key still hides text: see `is_token_count`.
        """
        return self._verdict(key if isinstance(key, str) else str(key)) == REPLACED

    def is_token_count(self, key: object) -> bool:
        """Return whether ``key`` names a token count: numbers under it are shown, text is not."""
        return self._verdict(key if isinstance(key, str) else str(key)) == COUNT

    def _verdict(self, key: str) -> int:
        # A per-redactor memo: the same few keys come back on every step, and a dict lookup
        # is cheaper than an lru_cache keyed on (key, patterns), which re-hashes the patterns.
        verdict = self._verdicts.get(key)
        if verdict is None:
            verdict = classify(key, self._patterns)
            if len(key) <= MAX_MEMO_KEY_LENGTH:
                if len(self._verdicts) >= _MAX_MEMO:
                    self._verdicts.clear()
                self._verdicts[key] = verdict
        return verdict

    def _key_set(self, keys: frozenset[str]) -> tuple[bool, tuple[str, ...]]:
        """Whether any of ``keys`` is sensitive, and which are token counts; memoised per set.

        Rendered payloads of one workflow repeat the same few key sets (a step's wire keys and
        its schema's fields), so one hash of the set replaces a method call per key. Large sets
        (a mapping keyed by ids, say) are not kept: they rarely come back and hold much.
        """
        verdict = self._key_sets.get(keys)
        if verdict is None:
            verdicts = {key: self._verdict(key) for key in keys}
            counts = tuple(key for key, kind in verdicts.items() if kind == COUNT)
            verdict = (REPLACED in verdicts.values(), counts)
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
        ``"[circular]"`` and nesting deeper than 64 levels ``"[too deep]"``. Every string (keys
        too) is scanned for secret-looking values.
        """
        return self._walk(value, _Walk(budget=None), 0)

    def redact_text(self, text: str) -> str:
        """Return free text (an error message, a tag) with its secrets replaced.

        Secret-looking values go (see `scan_values`), and so does the value written after a
        sensitive key in the forms messages use: ``password=...``, ``token: ...``,
        ``"api_key": "..."``, ``{'secret': '...'}``, ``Authorization: Bearer ...`` (quotes are
        kept). After a token-count key, a number is kept and anything else replaced.
        """
        return scrub_key_values(self._scrub(text), self._hides, self.replacement)

    def preview(self, value: object) -> object:
        """A redacted, bounded stand-in for ``value`` to show in a log line or a rejection.

        Text is redacted like `redact_text`, anything else walked like `redact`; either way
        only about the first 200 characters are looked at and kept.
        """
        if isinstance(value, str):
            text, _ = _scrubbed_prefix(value, _PREVIEW_LENGTH, self.redact_text)
            return text[:_PREVIEW_LENGTH]
        if value is None or type(value) in _PLAIN:
            return value
        shown = self._walk(value, _Walk(budget=_PREVIEW_LENGTH), 0)
        # A tuple stays one in the preview: it is shown as the caller wrote it.
        return tuple(shown) if isinstance(value, tuple) and isinstance(shown, list) else shown

    def _hides(self, key: str, value: str | None) -> bool:
        verdict = self._verdict(key)
        if value is None or verdict != COUNT:
            return verdict != SHOWN
        return _NUMBER.fullmatch(value) is None

    def _scrub(self, text: str) -> str:
        if self.scan_values:
            text = scrub_values(text, self.replacement)
        for pattern in self._extra_values:
            text = pattern.sub(self.replacement, text)
        return text

    def _clean(self, text: str, memo: RenderMemo | None = None) -> bool:
        """Whether walking the value rendered as ``text`` would change nothing in it."""
        if memo is None:
            if self.scan_values and has_trigger(text):
                return False
            return not self._key_facts(text) & (SENSITIVE | COUNT_TEXT)
        return not self._remembered_facts(text, memo) & (TRIGGER | SENSITIVE | COUNT_TEXT)

    def _remembered_facts(self, text: str, memo: RenderMemo) -> int:
        """`_facts` of ``text``, from ``memo`` when this run rendered the same text lately."""
        facts = memo.get(text)
        if facts is None:
            facts = self._key_facts(text)
            if self.scan_values and has_trigger(text):
                facts |= TRIGGER
            memo.put(text, facts)
        return facts

    def _key_facts(self, text: str) -> int:
        """What the keys of compact JSON ``text`` are (`SENSITIVE`, `COUNTS`, `COUNT_TEXT`)."""
        sensitive, counts = self._key_set(_json_keys(text))
        facts = SENSITIVE if sensitive else 0
        if counts:
            facts |= COUNTS
            # A token count holding text (or a list, which may hold text) is replaced.
            if any(f'"{k}":"' in text or f'"{k}":[' in text for k in counts):
                facts |= COUNT_TEXT
        return facts

    def _walk(self, value: object, walk: _Walk, depth: int) -> object:
        kind = type(value)
        if kind is str:
            return self._text(cast("str", value), walk)
        if value is None or kind in _PLAIN:
            walk.spend(1)
            return value
        if depth >= _MAX_DEPTH:
            walk.spend(len(_SENTINEL_TOO_DEEP))
            return _SENTINEL_TOO_DEEP
        if kind is dict or kind is list or kind is tuple:  # the common case, before any ABC
            return self._walk_container(value, walk, depth)
        if isinstance(value, str):  # a str enum member is shown as its value
            return self._text(str.__str__(value), walk)
        if isinstance(value, _NUMBERS):
            walk.spend(1)
            return value
        if isinstance(value, enum.Enum):
            return self._walk(value.value, walk, depth + 1)
        if isinstance(value, pydantic.BaseModel):
            return self._walk(_dump_model(value), walk, depth + 1)
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            fields: dict[object, object] = {
                f.name: getattr(value, f.name) for f in dataclasses.fields(value)
            }
            return self._walk_mapping(fields, walk, depth)
        if isinstance(value, Mapping | list | tuple | set | frozenset):
            return self._walk_container(value, walk, depth)
        # Dates, UUIDs, paths, unknown objects: what pydantic makes of them is plain JSON data
        # (its strings scanned too), so this recursion ends at the next level.
        return self._walk(_to_jsonable(value), walk, depth + 1)

    def _text(self, value: str, walk: _Walk) -> str:
        budget = walk.budget
        if budget is None:
            return self._scrub(value)
        keep = max(budget, 0) + 1
        text, consumed = _scrubbed_prefix(value, keep, self._scrub)
        if consumed < len(value):  # the rest of this string is never shown
            text = text[:keep]
            walk.cut = True
        walk.spend(len(text) + 2)
        return text

    def _walk_container(self, value: object, walk: _Walk, depth: int) -> object:
        marker = id(value)
        if marker in walk.active:
            walk.spend(len(_SENTINEL_CIRCULAR))
            return _SENTINEL_CIRCULAR
        walk.active.add(marker)
        try:
            if isinstance(value, Mapping):
                return self._walk_mapping(value, walk, depth)
            items = cast("Iterable[object]", value)  # only lists, tuples and sets get here
            walk.spend(2)
            result: list[object] = []
            for item in items:
                if walk.exhausted():
                    break
                walk.spend(1)
                result.append(self._walk(item, walk, depth + 1))
            return result
        finally:
            walk.active.discard(marker)

    def _walk_mapping(
        self, value: Mapping[object, object], walk: _Walk, depth: int
    ) -> dict[str, object]:
        walk.spend(2)
        result: dict[str, object] = {}
        for raw_key, item in value.items():
            if walk.exhausted():
                break
            key = raw_key if isinstance(raw_key, str) else str(raw_key)
            shown = self._text(key, walk)
            walk.spend(2)
            verdict = self._verdict(key)
            if verdict == REPLACED:
                walk.spend(len(self.replacement))
                result[shown] = self.replacement
                continue
            if self.function is not None:
                try:
                    item = self.function(key, item)
                except Exception as error:
                    raise RedactionError(f"the redactor function raised for key {key!r}") from error
            if verdict == COUNT:
                result[shown] = self._walk_count(item, walk, depth + 1)
            else:
                result[shown] = self._walk(item, walk, depth + 1)
        return result

    def _walk_count(self, value: object, walk: _Walk, depth: int) -> object:
        """The value under a token-count key: numbers shown, text replaced, lists alike."""
        if isinstance(value, str):
            walk.spend(len(self.replacement))
            return self.replacement
        if depth < _MAX_DEPTH and type(value) in (list, tuple):
            walk.spend(2)
            result: list[object] = []
            for item in cast("Iterable[object]", value):
                if walk.exhausted():
                    break
                walk.spend(1)
                result.append(self._walk_count(item, walk, depth + 1))
            return result
        return self._walk(value, walk, depth)

    def _bounded_json(self, value: object, limit: int, total: int | None) -> str:
        """Walk ``value`` only as far as ``limit`` characters of JSON reach, then render it.

        What was left out lies past the cut, so the result is the start of the whole redacted
        JSON. The marker counts from ``total`` (the unredacted rendering's length) when it is
        known, and says ``N+`` when it is not.
        """
        walk = _Walk(budget=limit + 1)
        text = pydantic_core.to_json(self._walk(value, walk, 0), fallback=str).decode()
        if not walk.cut:
            return truncate(text, limit)
        beyond = None if total is None else max(total - len(text), 0)
        return _truncate(text, limit, beyond)

    def _strip(self, value: object, depth: int) -> object:
        if isinstance(value, Mapping):
            if depth >= _MAX_DEPTH:
                return _SENTINEL_TOO_DEEP
            kept: dict[object, object] = {}
            for key, item in value.items():
                verdict = self._verdict(key if isinstance(key, str) else str(key))
                if verdict == REPLACED or (verdict == COUNT and _holds_text(item)):
                    continue
                kept[key] = self._strip(item, depth + 1)
            return kept
        if isinstance(value, list | tuple):
            if depth >= _MAX_DEPTH:
                return _SENTINEL_TOO_DEEP
            return [self._strip(item, depth + 1) for item in value]
        return value


def _holds_text(value: object) -> bool:
    if isinstance(value, str):
        return True
    return isinstance(value, list | tuple) and any(isinstance(item, str) for item in value)


def _scrubbed_prefix(text: str, keep: int, scrub: Callable[[str], str]) -> tuple[str, int]:
    """``scrub`` applied to about the first ``keep`` characters of ``text``, not to all of it.

    Returns the scrubbed text and how many characters of ``text`` it stands for (all of them,
    or a prefix). When it is a prefix, the result holds at least ``keep`` characters plus a
    margin, so that a secret cut where the scan stopped lies past what a caller keeping
    ``keep`` characters shows. Scrubbing can shrink text (a private key becomes a marker), so
    the window grows until enough is left.
    """
    end = keep + 2 * _SECRET_MARGIN
    while end < len(text):
        scrubbed = scrub(text[:end])
        if len(scrubbed) >= keep + _SECRET_MARGIN:
            return scrubbed, end
        end *= 2
    return scrub(text), len(text)


_FLAT_ENTRIES: Final = 16
"""Dicts of at most this many entries are first tried as flat (`_surely_longer`)."""


def _surely_longer(value: object, limit: int) -> bool:
    """Whether the JSON of ``value`` is surely longer than ``limit``, from a quick look.

    Adds up a lower bound of the rendered size (string lengths, one character per list item
    besides the item itself: brackets and commas are ``n + 1``; four per mapping entry: braces,
    commas and the quoted key's ``"":`` are at least ``4n + 1``) over at most 256 values, depth
    first, and stops as soon as it
    passes the limit: a 10 MB string or a list of a million records is seen at once, anywhere
    in the value, without rendering it. ``False`` means "not sure", never "short".
    """
    # Written for speed, as it runs on every input and output: exact type checks (`is`, no
    # call) for the plain JSON types, anything else through `_probe_other`; `Any` spares
    # casts, which are calls too.
    if type(value) is dict and len(value) <= _FLAT_ENTRIES:
        flat = _flat_size(value)
        if flat is not None:
            return flat > limit
    stack: list[Any] = [value]
    size = 0
    visited = 0
    while stack:
        item: Any = stack.pop()
        kind = type(item)
        children: Any
        if kind is dict:
            size += 1 + 4 * len(item)
            children = item.values()
        elif kind is list or kind is tuple:
            size += 1 + len(item)
            children = item
        elif kind is str:
            size += len(item) + 2
            children = ()
        else:
            size, children = _probe_other(item, size)
        visited += 1
        if size > limit:
            return True
        if visited >= _PROBE_NODES:
            return False
        if len(children) > _PROBE_NODES:
            children = list(itertools.islice(children, _PROBE_NODES))
        # Strings and numbers are counted where they are found, not visited one by one.
        for child in children:
            kind = type(child)
            if kind is str:
                size += len(child)
            elif not (kind is int or kind is float or kind is bool or child is None):
                stack.append(child)
        if size > limit:
            return True
    return False


def _flat_size(value: dict[Any, Any]) -> int | None:
    """`_surely_longer`'s count for the most common value, a small dict of scalars (a wire
    form, a payload), as its loop would count it, without the stack; ``None`` when nested."""
    size = 1 + 4 * len(value)
    for child in value.values():
        kind = type(child)
        if kind is str:
            size += len(child)
        elif not (kind is int or kind is float or kind is bool or child is None):
            return None
    return size


def _probe_other(item: object, size: int) -> tuple[int, Collection[object]]:
    """`_surely_longer` for a value that is not exactly a str, dict, list or tuple."""
    # A model first (the steps' inputs and outputs): it is no str, and the `Mapping` test
    # would walk the ABC's subclass hooks for it on every call.
    if isinstance(item, pydantic.BaseModel):
        return size, (item.__dict__,)
    if isinstance(item, str):
        return size + len(item) + 2, ()
    if isinstance(item, Mapping):
        return size + 1 + 4 * len(item), list(itertools.islice(item.values(), _PROBE_NODES))
    if isinstance(item, _COLLECTIONS):
        return size + 1 + len(item), list(itertools.islice(item, _PROBE_NODES))
    return size + 1, ()


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
    return _truncate(text, limit, 0)


def _truncate(text: str, limit: int, beyond: int | None) -> str:
    """`truncate`, knowing that ``beyond`` more characters followed ``text`` (``None``: some,
    how many is not known; the marker then says ``N+``)."""
    if limit < 0:
        raise ValueError(f"truncate: limit must be 0 or more, got {limit}")
    length = len(text)
    if length <= limit and beyond == 0:
        return text
    extra, plus = (0, "+") if beyond is None else (beyond, "")
    keep = min(limit, length)
    # The marker's length depends on how much is cut, which depends on the marker's length:
    # shrink `keep` until both fit (two rounds at most, as the digit count barely moves).
    while keep >= 0:
        marker = f"…[truncated {length - keep + extra}{plus} chars]"
        if keep + len(marker) <= limit:
            return text[:keep] + marker
        keep = limit - len(marker)
    return text[:limit]


def to_attribute_json(
    value: object,
    *,
    redactor: Redactor | None = None,
    limit: int = DEFAULT_MAX_ATTRIBUTE_LENGTH,
    memo: RenderMemo | None = None,
) -> str:
    """Redact ``value``, render it as compact JSON and truncate it: a span attribute value.

    The common case runs at C speed: the value is rendered first, and walked only when the
    part of its JSON that is kept (plus a margin) shows a sensitive key, a token count holding
    text, or the start of a secret-looking value; every key of compact JSON is a string
    directly followed by ``":``, so none can hide. A value whose JSON is surely far longer
    than ``limit`` (`_surely_longer`) is not rendered whole at all: it is walked only as far
    as the limit reaches. Either way the cost follows what is kept, not the value's size.

    Args:
        value: Any value (an input, output or event payload).
        redactor: The redactor to apply; `DEFAULT_REDACTOR` when omitted.
        limit: The maximum length of the result, marker included.
        memo: What ``redactor`` found in the texts this run rendered lately (`RenderMemo`):
            a text rendered again is not read again. The result is the same with or without.

    Returns:
        Compact JSON (non-ASCII kept as is), cut to ``limit`` characters with a marker.
    """
    redactor = redactor or DEFAULT_REDACTOR
    if memo is not None:
        memo = memo.for_redactor(redactor)
    if redactor._walks_always or _surely_longer(value, limit):
        return redactor._bounded_json(value, limit, None)
    try:
        text = pydantic_core.to_json(value, fallback=str).decode()
    except (ValueError, TypeError):  # circular data and the like: the walk copes
        return redactor._bounded_json(value, limit, None)
    if len(text) <= limit:
        if redactor._clean(text, memo):
            return text
        return redactor._bounded_json(value, limit, None)
    if redactor._clean(text[: limit + _SECRET_MARGIN]):
        return truncate(text, limit)
    return redactor._bounded_json(value, limit, len(text))


def redact_error_message(
    message: str, *, redactor: Redactor | None = None, limit: int = DEFAULT_MAX_ERROR_LENGTH
) -> str:
    """An error message as spans, snapshots and stream events show it: redacted, then cut.

    Secrets go as in `Redactor.redact_text` (``password=...``, ``"api_key": "..."``,
    ``Bearer ...``, ``Basic ...``, secret-looking values); only about the kept part of a long
    message is scanned, and the result ends in a ``…[truncated N chars]`` marker when cut.
    Redacting an already redacted message changes nothing.
    """
    checker = redactor or DEFAULT_REDACTOR
    text, consumed = _scrubbed_prefix(message, limit, checker.redact_text)
    return _truncate(text, limit, len(message) - consumed)


def redact_stack(
    stack: str, *, redactor: Redactor | None = None, limit: int = DEFAULT_MAX_STACK_LENGTH
) -> str:
    """A formatted stack trace, redacted and cut like `redact_error_message`.

    The start is kept: the frames, outermost first, then the start of the message (Python
    already folds repeated frames of a deep recursion).
    """
    return redact_error_message(stack, redactor=redactor, limit=limit)


def _json_keys(text: str) -> frozenset[str]:
    """The keys of compact JSON text (see `_JSON_KEY`)."""
    pattern = _JSON_KEY if "\\" in text else _UNESCAPED_JSON_KEY
    return frozenset(pattern.findall(text))


def strip_credentials(
    mapping: Mapping[str, object], *, redactor: Redactor | None = None
) -> dict[str, object]:
    """Return a copy of ``mapping`` without its credential-like keys, at any depth.

    Unlike redaction, the entries are dropped, not masked: used before a request context is
    persisted, so a credential never reaches the store at all (``{"user": {"token": ...}}``
    keeps ``user``, without its token). Mappings inside lists are stripped too; a token count
    holding text is dropped like a credential. Values are not scanned for secret-looking text:
    a resumed run reads what is stored, so what is kept is kept as it was.
    """
    checker = redactor or DEFAULT_REDACTOR
    return cast("dict[str, object]", checker._strip(mapping, 0))


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
