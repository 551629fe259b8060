"""Secrets inside text: secret-looking values, and ``key=value`` forms naming a credential.

`scrub_values` replaces what looks like a secret wherever it appears, whatever key holds the
text: OpenAI-style ``sk-...`` keys (and Stripe, GitHub, Slack and Google API keys), JWTs, the
token after ``Bearer`` and the credentials after ``Basic``, the password of a URL or DSN
(``postgresql://user:PASSWORD@host`` keeps the user and the host), AWS access key ids and
private key blocks. Every pattern starts with a fixed piece of text (``sk-``, ``eyJ``,
``earer``, ``://``, ...), gathered in `TRIGGERS`: text without any of them is returned after
a few substring tests, and since those pieces are never changed by JSON escaping, a JSON
rendering without a trigger holds no secret-looking string either (`to_attribute_json` relies
on it).

`scrub_key_values` handles the forms error messages use, ``password=...``, ``token: ...``,
``"api_key": "..."`` and ``{'secret': '...'}``: it asks the caller whether each key is a
credential, so the redactor's own key rules decide.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from functools import lru_cache
from typing import Final

__all__ = ["TRIGGERS", "KeyVerdict", "has_trigger", "scrub_key_values", "scrub_values"]

TRIGGERS: Final = (
    "sk-",
    "k_live_",
    "k_test_",
    "eyJ",
    "earer",
    "EARER",
    "asic",
    "ASIC",
    "://",
    "AKIA",
    "ASIA",
    "PRIVATE KEY",
    "ghp_",
    "gho_",
    "ghu_",
    "ghs_",
    "ghr_",
    "github_pat_",
    "xox",
    "AIza",
)
"""The fixed pieces of text secret-looking values start with (see the module docs). Plain
substring tests: a regular expression alternating them is several times slower."""


_GITHUB_PREFIXES: Final = ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_")


def has_trigger(text: str) -> bool:
    """Whether ``text`` holds the start of a secret-looking value (`TRIGGERS`).

    Written out rather than looped over: this runs on every rendered input and output, and
    a chain of ``in`` tests costs a fraction of a generator over the same tuple.
    """
    return (
        "sk-" in text
        or "k_live_" in text
        or "k_test_" in text
        or "eyJ" in text
        or "earer" in text
        or "EARER" in text
        or "asic" in text
        or "ASIC" in text
        or "://" in text
        or "AKIA" in text
        or "ASIA" in text
        or "PRIVATE KEY" in text
        or ("gh" in text and any(prefix in text for prefix in _GITHUB_PREFIXES))
        or "xox" in text
        or "AIza" in text
    )


# Whole matches that are secrets. Lookarounds keep a key from matching inside a longer word.
_WHOLE: Final = re.compile(
    r"(?<![A-Za-z0-9_-])sk-[A-Za-z0-9_-]{16,}"
    r"|(?<![A-Za-z0-9])[sr]k_(?:live|test)_[A-Za-z0-9]{16,}"
    r"|eyJ[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"
    r"|(?<![A-Z0-9])(?:AKIA|ASIA)[A-Z0-9]{16}(?![A-Z0-9])"
    r"|(?<![A-Za-z0-9_])gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{22,}"
    r"|xox[abposr]-[A-Za-z0-9-]{10,}"
    r"|AIza[0-9A-Za-z_-]{35}"
)
# A private key block, up to its END line or, cut short, to the end of the text.
_PRIVATE_KEY: Final = re.compile(
    r"(-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----)(?:.*?-----END [A-Z0-9 ]*PRIVATE KEY-----|.*)",
    re.DOTALL,
)
# The scheme as it is written in practice (Bearer, bearer, BEARER): `TRIGGERS` must see it.
_BEARER: Final = re.compile(r"\b((?:[Bb]earer|BEARER)\s+)([A-Za-z0-9._~+/-]+=*)")
_BASIC: Final = re.compile(r"\b((?:[Bb]asic|BASIC)\s+)([A-Za-z0-9+/]{8,}={0,2})(?![A-Za-z0-9+/=])")
# scheme://user:password@host: the password is what lies between the first ':' after the user
# and the last '@' of the authority.
_URL_PASSWORD: Final = re.compile(
    r"\b([A-Za-z][A-Za-z0-9+.-]{0,31}://[^\s:/?#@\"'<>]{0,255}):([^\s/?#\"'<>]{1,255})@"
)
_TOKEN_MIN_LENGTH: Final = 8
_WORDY_TOKEN_MIN_LENGTH: Final = 20


def scrub_values(text: str, replacement: str) -> str:
    """``text`` with every secret-looking value replaced by ``replacement``."""
    if not has_trigger(text):
        return text
    text = _PRIVATE_KEY.sub(lambda match: match.group(1) + replacement, text)
    text = _WHOLE.sub(replacement, text)
    text = _BEARER.sub(lambda match: _token(match, replacement), text)
    text = _BASIC.sub(lambda match: _basic(match, replacement), text)
    return _URL_PASSWORD.sub(lambda match: f"{match.group(1)}:{replacement}@", text)


def _token(match: re.Match[str], replacement: str) -> str:
    """A bearer token, unless it reads like a word ("the bearer of bad news")."""
    token = match.group(2)
    looks_like_token = len(token) >= _WORDY_TOKEN_MIN_LENGTH or (
        len(token) >= _TOKEN_MIN_LENGTH and not token.isalpha()
    )
    return match.group(1) + replacement if looks_like_token else match.group(0)


def _basic(match: re.Match[str], replacement: str) -> str:
    """Basic credentials are base64 of ``user:password``: only what decodes so is replaced."""
    encoded = match.group(2)
    try:
        decoded = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        return match.group(0)
    return match.group(1) + replacement if b":" in decoded else match.group(0)


KeyVerdict = Callable[[str, str | None], bool]
"""``verdict(key, value)``: whether the value written after ``key`` must be replaced. Called
first with ``None`` ("could it be?": a key that is never hidden is skipped without reading its
value), then, if so, with the value (a token count hides text, not numbers)."""

# A key starts where no other key character comes before it, which keeps the scan linear (a
# megabyte of letters is not tried as a million keys); its length is bounded for the same
# reason.
_KEY_SEPARATOR: Final = re.compile(
    r"""(?<![A-Za-z0-9_.-])(["']?)([A-Za-z_][A-Za-z0-9_.-]{0,127})\1(\s*[:=]\s*)"""
)
_PLAIN_VALUE: Final = r"""[^\s,;&)}\]'"]+"""


@lru_cache(maxsize=8)
def _value_pattern(replacement: str) -> re.Pattern[str]:
    """The value after a key: quoted, a scheme and its credentials (``Bearer xyz``), or a
    plain word; a value already replaced (by `scrub_values`) is one value, brackets and all."""
    done = re.escape(replacement)
    return re.compile(
        rf"""{done}|"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'"""
        rf"|(?i:bearer|basic|token|digest|negotiate)\s+(?:{done}|{_PLAIN_VALUE})"
        rf"|{_PLAIN_VALUE}"
    )


def scrub_key_values(text: str, verdict: KeyVerdict, replacement: str) -> str:
    """``text`` with the value after each credential key replaced (quotes are kept).

    Every ``key=`` or ``key:`` is looked at, also inside the value of another key
    (``failed: password=...``), so one key cannot hide the next.
    """
    pieces: list[str] = []
    position = 0
    search = _KEY_SEPARATOR.search
    value_at = _value_pattern(replacement).match
    while (found := search(text, position)) is not None:
        start = found.end()
        key = found.group(2)
        value = value_at(text, start) if verdict(key, None) else None
        if value is None or not verdict(key, _unquoted(value.group(0))):
            pieces.append(text[position:start])
            position = start
            continue
        shown = value.group(0)
        quote = shown[0] if shown[0] in "\"'" else ""
        pieces.append(text[position:start])
        pieces.append(f"{quote}{replacement}{quote}")
        position = value.end()
    pieces.append(text[position:])
    return "".join(pieces)


def _unquoted(value: str) -> str:
    if len(value) >= 2 and value[0] in "\"'" and value[-1] == value[0]:
        return value[1:-1]
    return value
