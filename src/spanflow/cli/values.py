"""One-line text for the values a run carries: outputs, errors, durations, token usage.

Shared by the live display (`spanflow.cli.display`), an agent's conversation under its step
(`spanflow.cli.conversation`) and the stored-run reports (`spanflow.cli.stored`).
"""

from __future__ import annotations

from typing import Any

from pydantic_core import to_jsonable_python

from spanflow.usage import Usage
from spanflow.workflows.results import StoredError

__all__ = [
    "compact",
    "describe_error",
    "describe_usage",
    "error_text",
    "format_duration",
    "has_tokens",
    "scalar",
    "wire",
]


def describe_usage(usage: Usage) -> str:
    """``281 tokens (239 in, 42 out)``."""
    total = usage.total_tokens or usage.input_tokens + usage.output_tokens
    return f"{total:,} tokens ({usage.input_tokens:,} in, {usage.output_tokens:,} out)"


def format_duration(milliseconds: float) -> str:
    """``42 ms`` below a second, ``1.23 s`` above."""
    if milliseconds < 1000:
        return f"{milliseconds:.0f} ms"
    return f"{milliseconds / 1000:.2f} s"


def has_tokens(usage: Usage) -> bool:
    """Whether `usage` counts any tokens."""
    return bool(usage.total_tokens or usage.input_tokens or usage.output_tokens)


def wire(value: Any) -> Any:
    """`value` as JSON-ready data (models and dataclasses as dicts; anything else as repr)."""
    return to_jsonable_python(value, fallback=repr)


def scalar(value: Any) -> str:
    """A value as a person reads it: strings bare, ``-`` for None, objects as ``{k: v}``."""
    if isinstance(value, str):
        return value
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {scalar(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(scalar(v) for v in value) + "]"
    return str(value)


def compact(value: Any, more: str, limit: int) -> str:
    """A value on one short line: ``key=value, key=value`` for objects, shortened with `more`."""
    data = wire(value)
    if isinstance(data, dict):
        text = ", ".join(f"{k}={scalar(v)}" for k, v in data.items())
    elif isinstance(data, list):
        text = f"{len(data)} items"
    else:
        text = scalar(data)
    return text if len(text) <= limit else text[: limit - len(more)] + more


def describe_error(error: BaseException) -> str:
    """``ValueError: message`` (a stored error keeps the name of the original exception)."""
    name = error.name if isinstance(error, StoredError) else type(error).__name__
    return f"{name}: {error}"


def error_text(error: Any) -> str:
    """An error as chunks carry it (``{name, message}``): ``ValueError: message``."""
    if isinstance(error, dict) and "message" in error:
        name = error.get("name")
        return f"{name}: {error['message']}" if name else str(error["message"])
    return scalar(error)
