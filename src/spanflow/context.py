"""`RequestContext`: per-run values (user, tenant, locale, ...) that every step can read.

A typed, JSON-serialisable mapping. It travels with the run, is stored in the run's snapshot
(minus credential-like keys, see `spanflow.tracing.redaction.strip_credentials`), and its listed
keys can be exported as span attributes (`TracingOptions.request_context_keys`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, MutableMapping
from typing import Any, TypeVar, overload

from pydantic_core import PydanticSerializationError, to_jsonable_python

from spanflow.errors import InvalidInputError

__all__ = ["RequestContext"]

_T = TypeVar("_T")


class RequestContext(MutableMapping[str, Any]):
    """A mutable mapping of request-scoped values with Mastra's ``get``/``set``/``has``."""

    __slots__ = ("_values",)

    def __init__(self, values: Mapping[str, Any] | None = None) -> None:
        self._values: dict[str, Any] = {}
        if values is not None:
            if not isinstance(values, Mapping):
                raise InvalidInputError(
                    f"request_context must be a mapping or RequestContext, "
                    f"got {type(values).__name__}"
                )
            for key, value in values.items():
                self[key] = value

    @classmethod
    def coerce(cls, value: RequestContext | Mapping[str, Any] | None) -> RequestContext:
        """Return `value` itself if it is a RequestContext, else a new one built from it."""
        if isinstance(value, RequestContext):
            return value
        return cls(value)

    @overload
    def get(self, key: str, /) -> Any: ...
    @overload
    def get(self, key: str, /, default: _T) -> Any | _T: ...
    def get(self, key: str, /, default: Any = None) -> Any:
        """The value stored under `key`, or `default`."""
        return self._values.get(key, default)

    def set(self, key: str, value: Any) -> None:
        """Store `value` under `key` (Mastra's ``requestContext.set``)."""
        self[key] = value

    def has(self, key: str) -> bool:
        """Whether `key` is present."""
        return key in self._values

    def to_dict(self) -> dict[str, Any]:
        """The values as JSON-able data; raises `InvalidInputError` naming a bad key."""
        out: dict[str, Any] = {}
        for key, value in self._values.items():
            try:
                out[key] = to_jsonable_python(value)
            except PydanticSerializationError as exc:
                raise InvalidInputError(
                    f"request_context[{key!r}] is not JSON-serialisable "
                    f"({type(value).__name__}): {exc}"
                ) from None
        return out

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __setitem__(self, key: str, value: Any) -> None:
        if not isinstance(key, str):
            raise InvalidInputError(
                f"request_context keys must be strings, got {type(key).__name__}"
            )
        self._values[key] = value

    def __delitem__(self, key: str) -> None:
        del self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"RequestContext({self._values!r})"
