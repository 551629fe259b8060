"""Values given on the command line: JSON arguments and ``--meta key=value`` metadata.

JSON arguments (``--input``, ``--data``, ``--request-context``) take the JSON text itself or
``@PATH`` to read it from a file. ``--meta`` pairs become nested metadata: a dotted key walks
into objects (``user.id=u-42`` gives ``{"user": {"id": "u-42"}}``), and every value is a string,
exactly as typed. A key cannot be both a value and a group (``user=x`` with ``user.id=y``).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from spanflow.cli.errors import UsageError

__all__ = ["MetaPair", "json_argument", "json_object_argument", "meta_pair", "nest_metadata"]

MetaPair = tuple[tuple[str, ...], str]
"""A parsed ``--meta`` argument: the key's dotted path and the value."""


def json_argument(text: str) -> Any:
    """argparse type: JSON text, or ``@PATH`` for a file holding it."""
    source = text
    if text.startswith("@"):
        path = Path(text[1:]).expanduser()
        try:
            source = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise argparse.ArgumentTypeError(f"cannot read {str(path)!r}: {reason}") from None
    try:
        return json.loads(source)
    except json.JSONDecodeError as exc:
        shown = source if len(source) <= 40 else source[:39] + "…"
        raise argparse.ArgumentTypeError(
            f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno} "
            f"(got {' '.join(shown.split())!r})"
        ) from None


def json_object_argument(text: str) -> dict[str, Any]:
    """argparse type: like `json_argument`, but the value must be a JSON object."""
    value = json_argument(text)
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(
            f"expected a JSON object ({{...}}), got {_json_kind(value)}"
        )
    return value


def meta_pair(text: str) -> MetaPair:
    """argparse type: ``key=value``, the key dotted (``user.id``), the value any string."""
    key, separator, value = text.partition("=")
    if not separator:
        raise argparse.ArgumentTypeError(f"expected key=value, got {text!r}")
    path = tuple(key.strip().split("."))
    if not all(path):
        raise argparse.ArgumentTypeError(
            f"{key!r} is not a metadata key: use names separated by single dots, like user.id"
        )
    return path, value


def nest_metadata(pairs: Sequence[MetaPair]) -> dict[str, Any]:
    """``--meta`` pairs as nested metadata; a later value for the same key wins.

    Raises:
        UsageError: A key is used both as a value and as a group of keys.
    """
    metadata: dict[str, Any] = {}
    for path, value in pairs:
        node = metadata
        for depth, part in enumerate(path[:-1]):
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise _conflict(path, path[: depth + 1])
            node = child
        if isinstance(node.get(path[-1]), dict):
            raise _conflict(path, path)
        node[path[-1]] = value
    return metadata


def _conflict(path: tuple[str, ...], clash: tuple[str, ...]) -> UsageError:
    return UsageError(
        f"argument --meta: {'.'.join(path)!r} conflicts with another --meta: "
        f"{'.'.join(clash)!r} cannot be both a value and a group of keys"
    )


def _json_kind(value: Any) -> str:
    kinds: dict[type, str] = {
        list: "an array",
        str: "a string",
        bool: "a boolean",
        int: "a number",
        float: "a number",
    }
    return "null" if value is None else kinds.get(type(value), type(value).__name__)
