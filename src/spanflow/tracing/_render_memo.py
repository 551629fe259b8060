"""`RenderMemo`: what one redactor found in the texts one run rendered lately.

A traced step renders the same value several times: its input on the step span and inside the
``workflow-step-start`` payload, its output inside the ``workflow-step-result`` payload and on
the span, and that output again as the next step's input. Rendering runs at C speed; reading the
text for credential keys and secret-looking values (`Redactor._facts`) is what costs. What that
reading finds depends on the text and the redactor only, so a memo keyed by the exact text is
never wrong, whatever happened to the value since: a value changed in place renders another
text, and misses. The memo belongs to one run and is bounded, so no user text outlives its run
in a cache.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from spanflow.tracing.redaction import Redactor

__all__ = ["COUNTS", "COUNT_TEXT", "SENSITIVE", "TRIGGER", "RenderMemo"]

# What a rendered text holds (bit flags; 0: nothing the redactor would change).
TRIGGER: Final = 1
"""The start of a secret-looking value (only looked for when the redactor scans values)."""
SENSITIVE: Final = 2
"""A key whose value the redactor replaces."""
COUNTS: Final = 4
"""A token-count key (``max_tokens``): shown while it holds numbers."""
COUNT_TEXT: Final = 8
"""A token-count key holding text or a list: the redactor replaces it."""

_HIDES: Final = TRIGGER | SENSITIVE | COUNT_TEXT
"""The facts of a text whose rendering the redactor changes."""

_MAX_TEXT: Final = 8192
"""Longer texts are read every time (they rarely come back, and hold much)."""
_MAX_ENTRIES: Final = 256
_MAX_CHARS: Final = 262_144
"""What one run's memo may hold in all before it starts afresh."""
_MAX_SHORT: Final = 256
"""Longest string `RenderMemo.remember_string` keeps."""


class RenderMemo:
    """The facts (`TRIGGER` | `SENSITIVE` | ...) one redactor found in recently rendered texts.

    Only ever asked for its own `redactor`'s facts: a memo handed to another redactor is
    ignored (`for_redactor`), since key rules and value patterns differ between redactors.
    """

    __slots__ = ("_chars", "_facts", "redactor", "strings")

    def __init__(self, redactor: Redactor) -> None:
        self.redactor = redactor
        self._facts: dict[str, int] = {}
        self._chars = 0
        self.strings: dict[str, str] = {}
        """Short payload strings (step names, ids, statuses) known to hold no trigger, each
        with its JSON."""

    def for_redactor(self, redactor: Redactor) -> RenderMemo | None:
        """This memo if it holds `redactor`'s facts, else ``None``."""
        return self if redactor is self.redactor else None

    def get(self, text: str) -> int | None:
        return self._facts.get(text)

    def remember_string(self, value: str, text: str) -> None:
        if len(value) <= _MAX_SHORT:
            _bounded(self.strings)[value] = text

    def put(self, text: str, facts: int) -> None:
        """Remember that `text` holds `facts`; a text holding something the redactor replaces
        (a secret-looking value, a sensitive key, text under a token count) is not kept: it is
        walked anyway, and is not kept in memory for it. Token counts holding numbers (usage)
        are kept: they hide nothing."""
        size = len(text)
        if facts & _HIDES or size > _MAX_TEXT:
            return
        if len(self._facts) >= _MAX_ENTRIES or self._chars + size > _MAX_CHARS:
            self._facts.clear()
            self._chars = 0
        self._facts[text] = facts
        self._chars += size


def _bounded(memo: dict[str, str]) -> dict[str, str]:
    """``memo``, emptied first when full."""
    if len(memo) >= _MAX_ENTRIES:
        memo.clear()
    return memo
