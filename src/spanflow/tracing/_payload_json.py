"""An event payload's attribute JSON built from its parts, when that provably changes nothing.

``spanflow.event.payload`` is `to_attribute_json` of the payload's wire dict: a few fixed keys
of spanflow's own (``stepName``, ``id``, ``startedAt``, ...) around the step's input and output,
which the step span renders too. `spliced_json` renders each entry on its own, reads only the
input and output pieces for keys (and through the run's `RenderMemo`, so a value rendered
moments ago for a span attribute is not read again), and joins them. It returns ``None``
whenever it cannot show that the result is exactly what `to_attribute_json` would return, and
the caller then takes that path.

Why the result is the same, for a wire dict of JSON data (what ``to_dict`` gives: the values
went through ``to_wire``) whose keys are identifiers, every one shown by the redactor (neither
sensitive nor a token count), and every piece of which is fine (below):

- Text. pydantic renders a dict as ``{`` + ``"key":value`` pairs joined by ``,`` + ``}``
  (compact, keys in order), each value as it renders alone with the same settings; an
  identifier needs no escaping. So the joined text is `to_attribute_json`'s rendering, and a
  value that fails to render alone (→ ``None``) fails inside the dict too.
- Length. The result is returned only within the limit; `_surely_longer` counts a lower bound
  of the rendering of JSON data (``n + 1`` characters of brackets and commas per list, ``4n +
  1`` per mapping, a string's length plus its quotes, one per scalar), so a dict whose
  rendering fits was not sent to the walk: both take the rendering path.
- Secret-looking values. `_clean` runs `has_trigger` on the whole; here each part is
  tested once instead (a key, a string, a dict or list piece through the memo), which is the
  same: no trigger holds ``{``, ``}``, ``,`` or ``"``, the only one holding ``:`` is ``://``
  and no JSON value starts with ``/``, so none straddles two parts; and numbers, ``null``,
  ``true`` and ``false`` hold none.
- Keys. `_clean` finds keys with a regular expression, a string directly followed by ``":``
  that holds no bare quote. Every piece is a whole JSON value, and every piece boundary lies
  between a piece and ``,"identifier":`` or ``}``: a match starting inside a piece either
  ends inside it, or would need ``:`` right after the opening quote of the next key, or at the
  end; so no match straddles a boundary, and the keys of the whole are the dict's own keys and
  the keys of each piece. A string, number, boolean or null piece has none; a dict or list
  piece is read for them, and must hold no sensitive key and no token count at all (a count
  holding a number would be fine, but proving that the ``"key":"`` test of `_clean` sees the
  same in the whole as in the piece is not worth the rare case). Both regular expressions of
  `_json_keys` find the same keys in text without a backslash (see `_UNESCAPED_JSON_KEY`), so
  which one the whole text picks changes nothing.

Then `_clean` of the whole is true, `to_attribute_json` returns the rendering unchanged, and so
does this. `tests/tracing/test_render_once.py` compares both over many shapes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import pydantic_core

from spanflow.tracing._key_rules import SHOWN
from spanflow.tracing._render_memo import COUNTS, SENSITIVE, TRIGGER, RenderMemo
from spanflow.tracing._secret_text import has_trigger
from spanflow.tracing.redaction import Redactor, _surely_longer

__all__ = ["spliced_json"]

_INT64_MIN: Final = -(2**63)
_UINT64_MAX: Final = 2**64 - 1
"""Ints in this range render as `str` gives them (larger ones are left to pydantic)."""
_UNSAFE: Final = TRIGGER | SENSITIVE | COUNTS
_HEX: Final = "0123456789abcdef-"
_MAX_KEY: Final = 256
_MAX_KEYS: Final = 256


def spliced_json(
    wire: Mapping[str, object], redactor: Redactor, limit: int, memo: RenderMemo | None
) -> str | None:
    """``to_attribute_json(wire, redactor=redactor, limit=limit)``, built from its parts; or
    ``None`` when that is not provably the same (see the module docs).

    Args:
        wire: An event payload's wire dict: JSON data only (``to_dict`` of a payload).
        redactor: The run's redactor.
        limit: The run's attribute length limit.
        memo: The run's memo of what ``redactor`` found in texts it read lately (``None``, or
            another redactor's: a fresh one is used).
    """
    if redactor._walks_always or type(wire) is not dict:
        return None
    if memo is None or memo.redactor is not redactor:
        memo = RenderMemo(redactor)
    starts = redactor._key_starts
    strings = memo.strings
    parts: list[str] = []
    length = 1
    for key, value in wire.items():
        # No start nor piece is ever empty, so `or` only ever stands for "not remembered".
        # The type first: a key object that merely compares equal to a known one is not it.
        start = (starts.get(key) or _key_start(key, redactor)) if type(key) is str else None
        if start is None:
            return None
        # The frequent cases inline (a known string, a timestamp), the rest in `_piece`.
        kind = type(value)
        if kind is str:
            # Over the limit on its own: `to_attribute_json` cuts it without rendering it all.
            if len(value) >= limit:
                return None
            piece = strings.get(value) or _string(value, memo)
        elif kind is int and _INT64_MIN <= value <= _UINT64_MAX:
            piece = str(value)
        else:
            piece = _piece(value, memo, limit)
        if piece is None:
            return None
        parts.append(start + piece)
        length += len(start) + len(piece) + 1
        if length > limit:  # "{" and the commas: the joined text is `length` long
            return None
    text = "{" + ",".join(parts) + "}"
    return text if len(text) <= limit else None


def _key_start(key: object, redactor: Redactor) -> str | None:
    """``"key":`` for a key the redactor shows, holding no trigger; else ``None``.

    Remembered by the redactor (a few hundred at most, as its key verdicts are)."""
    if type(key) is not str or not key.isidentifier() or redactor._verdict(key) != SHOWN:
        return None
    if redactor.scan_values and has_trigger(key):
        return None
    start = f'"{key}":'
    if len(key) <= _MAX_KEY:
        starts = redactor._key_starts
        if len(starts) >= _MAX_KEYS:
            starts.clear()
        starts[key] = start
    return start


def _piece(value: Any, memo: RenderMemo, limit: int) -> str | None:
    """``value`` as pydantic renders it, when it holds nothing the redactor would act on (no
    trigger, no sensitive key, no token count); else ``None``."""
    # `Any` and exact type tests: this runs for every entry of every payload.
    kind = type(value)
    if kind is str:
        known = memo.strings.get(value)
        return known if known is not None else _string(value, memo)
    if kind is int:
        # Digits render as `str` writes them (pydantic writes any larger int by itself).
        return str(value) if _INT64_MIN <= value <= _UINT64_MAX else _rendered(value)
    if value is None:
        return "null"
    if kind is bool:
        return "true" if value else "false"
    if kind is float:
        return _rendered(value)  # digits, "NaN", "Infinity": never a trigger
    if kind is dict or kind is list:
        # A big value surely over the limit (a list of many records, a long text inside) is
        # left to `to_attribute_json`'s bounded walk: rendering it whole here would cost what
        # that walk spares. Only the value pieces are probed, not the payload's own keys.
        if _surely_longer(value, limit):
            return None
        text = _rendered(value)
        if text is None:
            return None
        facts = memo.redactor._remembered_facts(text, memo)
        return None if facts & _UNSAFE else text
    return None  # not JSON data: to_attribute_json decides


def _string(value: str, memo: RenderMemo) -> str | None:
    """A string value's JSON, if it holds no trigger. Written directly when pydantic would
    write it so (it escapes quotes, backslashes and control characters only, and keeps
    non-ASCII as is); remembered, since step names, ids and statuses come back."""
    if '"' not in value and "\\" not in value and value.isprintable():
        text = f'"{value}"'
    else:
        rendered = _rendered(value)
        if rendered is None:
            return None
        text = rendered
    # A call id (hex digits and dashes) cannot hold a trigger: each has another character.
    if memo.redactor.scan_values and value.strip(_HEX) and has_trigger(text):
        return None
    memo.remember_string(value, text)
    return text


def _rendered(value: object) -> str | None:
    try:
        return pydantic_core.to_json(value, fallback=str).decode()
    except (ValueError, TypeError):  # circular data and the like: to_attribute_json copes
        return None
