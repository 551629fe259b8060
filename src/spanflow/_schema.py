"""Schemas: pydantic models or anything a pydantic `TypeAdapter` accepts, behind one wrapper.

Steps see validated Python objects (model instances); the wire form and snapshots hold their
JSON dump. Validation errors become `InvalidInputError` messages that name the field.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic_core import PydanticSerializationError, to_jsonable_python

from spanflow.errors import InvalidInputError

__all__ = ["Schema", "check_storable", "describe_validation_error", "schema_of", "to_wire"]

_SCALARS = (str, int, float, bool, type(None))
_NOT_DATA: Any = object()


@dataclass(frozen=True, slots=True)
class Schema:
    """A compiled schema: validates Python values and names the failing field."""

    type_: Any
    adapter: TypeAdapter[Any]
    model: type[BaseModel] | None = None
    """`type_` when it is a pydantic model class: its instances are valid as they are."""

    def validate(self, value: Any, *, what: str) -> Any:
        """Validate `value` structurally: by its fields, whatever class holds them.

        A value that is already an instance of the model is returned as it is (the common
        step-to-step hand-over). Anything else is validated as data: dicts and objects with
        matching attributes first (another model with the same fields), then, if that fails,
        the value's JSON-compatible form (`to_wire`), so ``{"a": AOut(a=1)}`` is accepted by
        ``dict[str, dict[str, int]]`` or a TypedDict, and a `list[Model]` by `list[dict]`.

        Raises:
            InvalidInputError: naming `what` (e.g. "input of step 'charge'") and the field.
        """
        # Only a model class may be used with isinstance: TypedDicts (which are classes too)
        # and generic aliases raise TypeError there.
        if self.model is not None and isinstance(value, self.model):
            return value
        try:
            return self.adapter.validate_python(value, from_attributes=True)
        except ValidationError as exc:
            return self._validate_as_data(value, exc, what)

    def _validate_as_data(self, value: Any, error: ValidationError, what: str) -> Any:
        """`validate`'s second attempt, on `value`'s data form (only failures pay for it)."""
        data = _data_form(value)
        if data is not _NOT_DATA:
            try:
                return self.adapter.validate_python(data)
            except ValidationError as exc:
                error = exc  # about the data as the target sees it: name its fields
        raise InvalidInputError(
            describe_validation_error(error, what), errors=_plain_errors(error)
        ) from None

    def json_schema(self) -> dict[str, Any]:
        """The JSON schema (used for tool definitions and documentation)."""
        return self.adapter.json_schema()


def _data_form(value: Any) -> Any:
    """`value`'s JSON-compatible form when it differs from `value`, else `_NOT_DATA`.

    Scalars and plain JSON containers are their own data form (validating them again would
    fail the same way). Unlike `to_wire`, there is no `repr` fallback: an object pydantic
    cannot serialise has no data form, so it cannot slip through a `str` field as its repr.
    """
    if isinstance(value, _SCALARS):
        return _NOT_DATA
    try:
        data = to_jsonable_python(value)
    except (PydanticSerializationError, ValueError, TypeError):
        return _NOT_DATA
    return _NOT_DATA if data == value else data


def _new_schema(type_: Any) -> Schema:
    model = type_ if isinstance(type_, type) and issubclass(type_, BaseModel) else None
    return Schema(type_, TypeAdapter(type_), model)


@lru_cache(maxsize=1024)
def _compile(type_: Any) -> Schema:
    return _new_schema(type_)


def schema_of(type_: Any) -> Schema | None:
    """The compiled `Schema` for a type, or ``None`` for ``None`` (no validation)."""
    if type_ is None:
        return None
    try:
        return _compile(type_)
    except TypeError:  # unhashable annotation objects: compile without the cache
        return _new_schema(type_)


def describe_validation_error(exc: ValidationError, what: str) -> str:
    """One readable sentence per problem: ``input of step 'x': field 'a.b': Field required``."""
    parts = []
    for err in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in err.get("loc", ()))
        where = f"field '{loc}'" if loc else "value"
        parts.append(f"{where}: {err.get('msg', 'invalid')}")
    return f"invalid {what}: " + "; ".join(parts)


def _plain_errors(exc: ValidationError) -> list[dict[str, Any]]:
    return [
        {"loc": list(e.get("loc", ())), "msg": e.get("msg"), "type": e.get("type")}
        for e in exc.errors(include_url=False)
    ]


_WIRE_SCALARS = (str, int, float, bool)
"""A tuple, not ``str | int | ...``: a union written in the call would be built on every call."""


def to_wire(value: Any) -> Any:
    """The JSON-able form of any value the engine holds (models dumped in JSON mode)."""
    if value is None or isinstance(value, _WIRE_SCALARS):
        return value
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    return to_jsonable_python(value, fallback=repr)


# -- can a value be stored? ------------------------------------------------------------------------

_STRICT_JSON = json.JSONEncoder(allow_nan=False, separators=(",", ":"))
_MAX_DEPTH = 200
"""Where a value the encoders gave up on is nested deeper than this, that is the problem named."""
_MAX_INT = 10**4300
"""Python refuses to print ints of more digits (``sys.get_int_max_str_digits``)."""


def check_storable(value: Any, *, what: str) -> None:
    """Refuse a value that no store could keep: it must have a JSON form (`to_wire`) that is
    strict JSON (no NaN or infinities, ints of at most 4,300 digits, no cycles, bytes that are
    text, nesting no encoder gives up on). The same rule on every store, so a workflow that
    runs on the in-memory store also runs on SQLite and PostgreSQL. Only a refused value pays
    for finding the field path.

    Raises:
        InvalidInputError: naming `what` (e.g. "output of step 'load'"), the field path and the
            problem, e.g. ``output of step 'load' cannot be stored: at 'rows[3].score': nan is
            not JSON``.
    """
    if _plain(value, 0):
        return
    try:
        _STRICT_JSON.encode(to_wire(value))
        return
    except (ValueError, TypeError, RecursionError, PydanticSerializationError) as err:
        found = _first_problem(value, "", set(), 0)
        where, problem = found if found is not None else ("", f"{type(err).__name__}: {err}")
    if len(where) > 80:
        where = "…" + where[-79:]
    at = f"at '{where}': " if where else ""
    raise InvalidInputError(f"{what} cannot be stored: {at}{problem}")


def _plain(value: Any, depth: int) -> bool:
    """Whether `value` is small plain JSON data, surely storable: the common case, told without
    encoding it (anything else, models included, is encoded to find out)."""
    kind = type(value)
    if kind is str or kind is bool or value is None:
        return True
    if kind is int:
        return bool(-_MAX_INT < value < _MAX_INT)
    if kind is float:
        return math.isfinite(value)
    if depth >= 8:  # deep (or cyclic): the encoder decides
        return False
    if kind is dict:
        return len(value) <= 64 and all(
            type(key) is str and _plain(item, depth + 1) for key, item in value.items()
        )
    if kind is list or kind is tuple:
        return len(value) <= 64 and all(_plain(item, depth + 1) for item in value)
    return False


def _first_problem(value: Any, path: str, seen: set[int], depth: int) -> tuple[str, str] | None:
    """Where in `value` (a field path) and what makes it unstorable; ``None`` if nothing is
    found (the caller then reports the encoder's own message)."""
    if depth > _MAX_DEPTH:
        return path, f"nested more than {_MAX_DEPTH} deep"
    problem = _scalar_problem(value)
    if problem is not None:
        return path, problem
    children = _children(value)
    if children is None:
        return None
    if id(value) in seen:
        return path, "refers to itself (a cycle)"
    seen.add(id(value))
    for key, child in children:
        sub = f"{path}[{key}]" if isinstance(key, int) else (f"{path}.{key}" if path else str(key))
        found = _first_problem(child, sub, seen, depth + 1)
        if found is not None:
            return found
    seen.discard(id(value))
    return None


def _scalar_problem(value: Any) -> str | None:
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return f"{value!r} is not JSON (use None or a string)"
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= _MAX_INT:
        return "an int of more than 4,300 digits (store it as a string)"
    if isinstance(value, bytes | bytearray):
        try:
            bytes(value).decode()
        except UnicodeDecodeError as err:
            return f"bytes that are not UTF-8 text ({err.reason} at byte {err.start}): use base64"
    return None


def _children(value: Any) -> list[tuple[Any, Any]] | None:
    if isinstance(value, dict):
        return list(value.items())
    if isinstance(value, list | tuple | set | frozenset):
        return list(enumerate(value))
    if isinstance(value, BaseModel):
        return [(name, getattr(value, name, None)) for name in type(value).model_fields]
    return None
