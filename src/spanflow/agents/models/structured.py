"""Structured output: the schema a call asks for, how a model is told, how a reply is checked.

`OutputSchema.coerce` takes a pydantic model class or a JSON Schema dict. A model that has a
native JSON-schema response format (``supports_response_format``) gets it as the request's
`ResponseFormat`; any other is told by `OutputSchema.instruction`, appended to the system
prompt. Either way the reply's text is parsed and validated here: by pydantic for a model
class, by `json_schema_problems` (the common JSON Schema keywords: ``type``, ``properties``,
``required``, ``additionalProperties``, ``items``, ``enum``, ``const``, ``anyOf``/``oneOf``/
``allOf``, bounds on numbers, strings and arrays, and local ``$ref``s) for a dict.

`partial_json` reads the object a reply has streamed so far, for the ``object`` chunks.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pydantic

from spanflow.errors import InvalidInputError

__all__ = [
    "OutputSchema",
    "OutputValidationError",
    "StructuredOutputInput",
    "json_schema_problems",
    "partial_json",
]

StructuredOutputInput = type[pydantic.BaseModel] | Mapping[str, Any]
"""What ``structured_output=`` accepts: a pydantic model class or a JSON Schema dict."""

_NAME = re.compile(r"[^A-Za-z0-9_-]+")
_MAX_PROBLEMS = 10


class OutputValidationError(ValueError):
    """A reply that is not JSON, or does not match the schema; the message lists why."""


@dataclass(frozen=True, slots=True)
class OutputSchema:
    """The structured output one call asks for."""

    name: str
    """A name for the schema (OpenAI's ``json_schema.name``): the model's class name, or a
    JSON Schema's ``title``, else ``output``."""
    json_schema: dict[str, Any]
    model: type[pydantic.BaseModel] | None = None
    """The pydantic model the reply is validated into; ``None`` for a JSON Schema dict."""
    _defs: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def coerce(cls, value: object) -> OutputSchema:
        """An `OutputSchema` from what a caller passed.

        Raises:
            InvalidInputError: `value` is neither a pydantic model class nor a dict.
        """
        if isinstance(value, OutputSchema):
            return value
        if isinstance(value, type) and issubclass(value, pydantic.BaseModel):
            return cls(_clean_name(value.__name__), value.model_json_schema(), value)
        if isinstance(value, Mapping):
            schema = dict(value)
            title = schema.get("title")
            name = _clean_name(title) if isinstance(title, str) and title else "output"
            return cls(name, schema)
        raise InvalidInputError(
            f"structured_output must be a pydantic model class or a JSON Schema dict, "
            f"got {type(value).__name__}"
        )

    def instruction(self) -> str:
        """What a model without a native response format is told (end of the system prompt)."""
        return (
            "Answer with a single JSON value that matches this JSON Schema, and nothing else "
            "(no prose, no code fences):\n" + json.dumps(self.json_schema, sort_keys=True)
        )

    def validate(self, text: str) -> Any:
        """The reply's value: a model instance, or the parsed JSON for a JSON Schema.

        Raises:
            OutputValidationError: Not JSON, or not matching the schema (the message says where).
        """
        try:
            data = json.loads(_strip_fences(text))
        except ValueError as exc:
            raise OutputValidationError(f"the reply is not valid JSON ({exc})") from None
        if self.model is not None:
            try:
                return self.model.model_validate(data)
            except pydantic.ValidationError as exc:
                raise OutputValidationError(_pydantic_problems(exc)) from None
        problems = json_schema_problems(data, self.json_schema)
        if problems:
            raise OutputValidationError("; ".join(problems[:_MAX_PROBLEMS]))
        return data


def _clean_name(name: str) -> str:
    return _NAME.sub("_", name)[:64] or "output"


def _strip_fences(text: str) -> str:
    """The reply without a Markdown code fence around it (models add them unasked)."""
    stripped = text.strip()
    if stripped.startswith("```"):
        stripped = stripped.split("\n", 1)[1] if "\n" in stripped else ""
        if stripped.rstrip().endswith("```"):
            stripped = stripped.rstrip()[:-3]
    return stripped


def _pydantic_problems(exc: pydantic.ValidationError) -> str:
    problems = []
    for err in exc.errors(include_url=False)[:_MAX_PROBLEMS]:
        where = ".".join(str(p) for p in err["loc"])
        problems.append(f"field '{where}': {err['msg']}" if where else str(err["msg"]))
    return "; ".join(problems)


# -- JSON Schema (the common keywords) ---------------------------------------------------------

_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "boolean": (bool,),
    "null": (type(None),),
}


def json_schema_problems(value: Any, schema: Mapping[str, Any]) -> list[str]:
    """What is wrong with `value` against `schema` (empty when it matches)."""
    problems: list[str] = []
    _check(value, schema, "$", problems, dict(schema))
    return problems


def _type_matches(value: Any, kind: str) -> bool:
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, _TYPES.get(kind, (object,)))


def _resolve(schema: Mapping[str, Any], root: Mapping[str, Any]) -> Mapping[str, Any]:
    ref = schema.get("$ref")
    if not isinstance(ref, str) or not ref.startswith("#/"):
        return schema
    target: Any = root
    for part in ref[2:].split("/"):
        target = target.get(part) if isinstance(target, Mapping) else None
    return target if isinstance(target, Mapping) else {}


def _check(
    value: Any, schema: Mapping[str, Any], where: str, out: list[str], root: Mapping[str, Any]
) -> None:
    schema = _resolve(schema, root)
    kinds = schema.get("type")
    if kinds is not None:
        names = [kinds] if isinstance(kinds, str) else list(kinds)
        if not any(_type_matches(value, k) for k in names):
            out.append(f"{where}: expected {' or '.join(names)}, got {_json_type(value)}")
            return
    if "enum" in schema and value not in schema["enum"]:
        out.append(f"{where}: must be one of {json.dumps(schema['enum'])}")
    if "const" in schema and value != schema["const"]:
        out.append(f"{where}: must be {json.dumps(schema['const'])}")
    _check_combinators(value, schema, where, out, root)
    if isinstance(value, dict):
        _check_object(value, schema, where, out, root)
    elif isinstance(value, list):
        _check_array(value, schema, where, out, root)
    elif isinstance(value, str):
        _check_bounds(len(value), schema, "minLength", "maxLength", f"{where}: length", out)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        _check_bounds(value, schema, "minimum", "maximum", where, out)


def _check_combinators(
    value: Any, schema: Mapping[str, Any], where: str, out: list[str], root: Mapping[str, Any]
) -> None:
    for key in ("anyOf", "oneOf"):
        options = schema.get(key)
        if not isinstance(options, list) or not options:
            continue
        matches = sum(not _sub_problems(value, option, where, root) for option in options)
        if matches == 0:
            out.append(f"{where}: matches none of the {key} alternatives")
        elif key == "oneOf" and matches > 1:
            out.append(f"{where}: matches {matches} of the oneOf alternatives, not exactly one")
    for option in schema.get("allOf") or ():
        _check(value, option, where, out, root)


def _sub_problems(value: Any, schema: Any, where: str, root: Mapping[str, Any]) -> list[str]:
    problems: list[str] = []
    if isinstance(schema, Mapping):
        _check(value, schema, where, problems, root)
    return problems


def _check_object(
    value: dict[str, Any],
    schema: Mapping[str, Any],
    where: str,
    out: list[str],
    root: Mapping[str, Any],
) -> None:
    properties = schema.get("properties") or {}
    for name in schema.get("required") or ():
        if name not in value:
            out.append(f"{where}.{name}: required field is missing")
    extra = schema.get("additionalProperties", True)
    for name, item in value.items():
        if name in properties:
            _check(item, properties[name], f"{where}.{name}", out, root)
        elif extra is False:
            out.append(f"{where}.{name}: unexpected field")
        elif isinstance(extra, Mapping):
            _check(item, extra, f"{where}.{name}", out, root)


def _check_array(
    value: list[Any], schema: Mapping[str, Any], where: str, out: list[str], root: Mapping[str, Any]
) -> None:
    items = schema.get("items")
    if isinstance(items, Mapping):
        for index, item in enumerate(value):
            _check(item, items, f"{where}[{index}]", out, root)
    _check_bounds(len(value), schema, "minItems", "maxItems", f"{where}: item count", out)


def _check_bounds(
    value: float, schema: Mapping[str, Any], low: str, high: str, what: str, out: list[str]
) -> None:
    minimum, maximum = schema.get(low), schema.get(high)
    if isinstance(minimum, int | float) and value < minimum:
        out.append(f"{what} must be >= {minimum}, got {value}")
    if isinstance(maximum, int | float) and value > maximum:
        out.append(f"{what} must be <= {maximum}, got {value}")


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


# -- partial objects while the reply streams ----------------------------------------------------

_CLOSERS = {"{": "}", "[": "]"}
_OPEN_NUMBER = re.compile(r"-?\d[\d.eE+-]*$")
"""A number at the very end of the text: more digits may follow, so it is not final yet."""


def partial_json(text: str) -> Any:
    """The object or array that `text` (a JSON reply cut anywhere) holds so far, or ``None``.

    Open strings, arrays and objects are closed; a dangling key, ``:`` or ``,`` is dropped,
    and an unfinished literal is left out, and so is a number at the very end (``12`` may
    still become ``125``; it shows once a ``,``, ``}``, ``]`` or a space ends it). So a
    partial value never shows up half-typed, except a string, which grows as it streams.
    """
    start = min((i for i in (text.find("{"), text.find("[")) if i >= 0), default=-1)
    if start < 0:
        return None
    body = text[start:]
    stack, in_string = _scan(body)
    candidate = body + ('"' if in_string else "")
    if not in_string and _OPEN_NUMBER.search(candidate):
        candidate = _trim(candidate)
        stack, _unused = _scan(candidate)
    for _ in range(6):
        try:
            value = json.loads(candidate + "".join(_CLOSERS[c] for c in reversed(stack)))
        except ValueError:
            trimmed = _trim(candidate)
            if trimmed == candidate:
                return None
            candidate = trimmed
            stack, _unused = _scan(candidate)
            continue
        return value if isinstance(value, dict | list) else None
    return None


def _scan(text: str) -> tuple[list[str], bool]:
    """The brackets still open at the end of `text`, and whether a string is open."""
    stack: list[str] = []
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in _CLOSERS:
            stack.append(char)
        elif char in "}]" and stack:
            stack.pop()
    return stack, in_string


def _trim(text: str) -> str:
    """`text` cut back to before its last incomplete member (a dangling key, ``:``, ``,`` or
    an unfinished literal)."""
    stripped = text.rstrip()
    if stripped.endswith('\\"'):
        stripped = stripped[:-2] + '"'
    cut = max(stripped.rfind(","), stripped.rfind("{"), stripped.rfind("["))
    if cut < 0:
        return text
    if stripped[cut] == ",":
        return stripped[:cut]
    return stripped[: cut + 1]
