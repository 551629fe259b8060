"""Which keys name a credential: normalising keys, whole words, and token counts.

A key is normalised by lowercasing it and dropping every character that is not a letter or a
digit; a pattern matches when it occurs in the normalised key, or, for patterns of four
characters or fewer, when it is a whole word of the key (split at separators and camelCase
humps), so that ``author`` is not ``auth``. ``token`` has rules of its own: token *counts*
(``max_tokens``, ``tokens_used``) are shown while they hold numbers. `classify` says which of
the three a key is; the `Redactor` memoises its answers.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Final

__all__ = ["COUNT", "MAX_MEMO_KEY_LENGTH", "REPLACED", "SHOWN", "classify", "normalise"]

# What the value under a key is: shown, replaced, or a token count (numbers shown, text not).
SHOWN: Final = 0
REPLACED: Final = 1
COUNT: Final = 2

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
MAX_MEMO_KEY_LENGTH: Final = 256
"""Longer keys are judged every time: a memo must not keep megabyte keys alive."""

_WHOLE_WORD_MAX_LENGTH: Final = 4


def normalise(key: str) -> str:
    if len(key) > MAX_MEMO_KEY_LENGTH:
        return _normalise_uncached(key)
    return _normalise_cached(key)


def _normalise_uncached(key: str) -> str:
    return "".join(char for char in key.lower() if char.isalnum())


_normalise_cached = lru_cache(maxsize=4096)(_normalise_uncached)


def _words(key: str) -> frozenset[str]:
    if len(key) > MAX_MEMO_KEY_LENGTH:
        return _words_uncached(key)
    return _words_cached(key)


def _words_uncached(key: str) -> frozenset[str]:
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


_words_cached = lru_cache(maxsize=8192)(_words_uncached)


def classify(key: str, patterns: tuple[str, ...]) -> int:
    normalised = normalise(key)
    words: frozenset[str] | None = None
    verdict = SHOWN
    for pattern in patterns:
        if len(pattern) <= _WHOLE_WORD_MAX_LENGTH:
            words = _words(key) if words is None else words
            if pattern in words:
                return REPLACED
        elif pattern == "token":
            verdict = max(verdict, _token_verdict(normalised))
            if verdict == REPLACED:
                return verdict
        elif pattern in normalised:
            return REPLACED
    return verdict


def _token_verdict(normalised: str) -> int:
    verdict = SHOWN
    start = normalised.find("token")
    while start != -1:
        occurrence = _token_occurrence(normalised, start)
        if occurrence == REPLACED:
            return occurrence
        verdict = max(verdict, occurrence)
        start = normalised.find("token", start + 1)
    return verdict


def _token_occurrence(normalised: str, start: int) -> int:
    before, rest = normalised[:start], normalised[start + len("token") :]
    if before.endswith(_CREDENTIAL_QUALIFIERS):
        return REPLACED
    if rest.startswith("iz"):  # tokenizer, tokenize, tokenization: names, not counts
        return SHOWN
    tail = rest.removeprefix("s")
    if tail == "":
        return COUNT if rest == "s" else REPLACED
    return COUNT if tail.startswith(_TOKEN_COUNT_WORDS) else REPLACED
