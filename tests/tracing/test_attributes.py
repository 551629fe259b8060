"""Metadata, request-context keys and tags become flat attributes Jaeger can search."""

from __future__ import annotations

import datetime
import enum
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pydantic
from hypothesis import given
from hypothesis import strategies as st

from spanflow.tracing.attributes import (
    AttributeValue,
    flatten_metadata,
    flatten_value,
    limit_attribute_lengths,
    lookup_path,
    request_context_attributes,
    tag_attributes,
)
from spanflow.tracing.redaction import Redactor


class Plan(enum.Enum):
    PRO = "pro"


class User(pydantic.BaseModel):
    id: str
    plan: Plan
    nickname: str | None = None


@dataclass
class Tenant:
    name: str
    seats: int


class Session:
    """A plain object, read by attribute."""

    def __init__(self) -> None:
        self.user = User(id="u-42", plan=Plan.PRO)
        self._secret = "hidden"

    @property
    def region(self) -> str:
        return "eu"

    def shout(self) -> str:
        return "HEY"


class ContextBag:
    """A mapping-like request context that is not a `Mapping`."""

    def __init__(self, values: dict[str, object]) -> None:
        self._values = values

    def __contains__(self, key: object) -> bool:
        return key in self._values

    def __getitem__(self, key: str) -> object:
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)


# --- flatten_metadata -------------------------------------------------------------------


def test_nested_metadata_becomes_one_attribute_per_leaf() -> None:
    assert flatten_metadata({"user": {"id": "u-42"}, "plan": "pro"}) == {
        "spanflow.metadata.user.id": "u-42",
        "spanflow.metadata.plan": "pro",
    }


def test_str_bool_int_and_float_leaves_keep_their_types() -> None:
    attributes = flatten_metadata({"s": "x", "b": True, "i": 7, "f": 0.5})
    assert attributes == {
        "spanflow.metadata.s": "x",
        "spanflow.metadata.b": True,
        "spanflow.metadata.i": 7,
        "spanflow.metadata.f": 0.5,
    }
    assert type(attributes["spanflow.metadata.b"]) is bool
    assert type(attributes["spanflow.metadata.i"]) is int


def test_none_leaves_and_empty_mappings_are_dropped() -> None:
    assert flatten_metadata({"a": None, "b": {"c": None}, "d": {}}) == {}


def test_list_of_one_scalar_type_becomes_a_tuple_of_that_type() -> None:
    assert flatten_metadata({"s": ["a", "b"], "i": [1, 2], "b": [True, False], "f": (0.5,)}) == {
        "spanflow.metadata.s": ("a", "b"),
        "spanflow.metadata.i": (1, 2),
        "spanflow.metadata.b": (True, False),
        "spanflow.metadata.f": (0.5,),
    }


def test_list_mixing_bools_and_ints_is_not_an_int_array() -> None:
    assert flatten_metadata({"x": [1, True]}) == {"spanflow.metadata.x": "[1,true]"}


def test_mixed_or_nested_lists_become_json() -> None:
    assert flatten_metadata({"mixed": [1, "a"], "dicts": [{"k": 1}], "holes": [1, None]}) == {
        "spanflow.metadata.mixed": '[1,"a"]',
        "spanflow.metadata.dicts": '[{"k":1}]',
        "spanflow.metadata.holes": "[1,null]",
    }


def test_empty_list_becomes_an_empty_array() -> None:
    assert flatten_metadata({"x": []}) == {"spanflow.metadata.x": ()}


def test_pydantic_models_and_dataclasses_are_flattened_like_dicts() -> None:
    metadata = {"user": User(id="u-42", plan=Plan.PRO), "tenant": Tenant(name="acme", seats=3)}
    assert flatten_metadata(metadata) == {
        "spanflow.metadata.user.id": "u-42",
        "spanflow.metadata.user.plan": "pro",
        "spanflow.metadata.tenant.name": "acme",
        "spanflow.metadata.tenant.seats": 3,
    }


def test_other_values_are_converted_as_pydantic_serialises_them() -> None:
    run_id = uuid.UUID("12345678-1234-5678-1234-567812345678")
    metadata = {
        "day": datetime.date(2024, 5, 1),
        "plan": Plan.PRO,
        "run": run_id,
        "plans": [Plan.PRO, Plan.PRO],
        "ids": {1, 2},
    }
    assert flatten_metadata(metadata) == {
        "spanflow.metadata.day": "2024-05-01",
        "spanflow.metadata.plan": "pro",
        "spanflow.metadata.run": str(run_id),
        "spanflow.metadata.plans": ("pro", "pro"),
        "spanflow.metadata.ids": (1, 2),
    }


def test_unknown_objects_fall_back_to_their_str() -> None:
    class Opaque:
        def __str__(self) -> str:
            return "opaque!"

    assert flatten_metadata({"x": Opaque()}) == {"spanflow.metadata.x": "opaque!"}


def test_int_beyond_64_bits_becomes_a_string() -> None:
    assert flatten_metadata({"big": 2**70, "ok": 2**63 - 1}) == {
        "spanflow.metadata.big": str(2**70),
        "spanflow.metadata.ok": 2**63 - 1,
    }


def test_str_enum_members_become_plain_strings() -> None:
    class Color(enum.StrEnum):
        RED = "red"

    value = flatten_metadata({"c": Color.RED})["spanflow.metadata.c"]
    assert value == "red"
    assert type(value) is str


def test_non_string_keys_are_stringified_and_empty_keys_skipped() -> None:
    assert flatten_metadata({1: "one", "": "nothing"}) == {"spanflow.metadata.1": "one"}  # type: ignore[dict-item]


def test_literal_dotted_metadata_keys_keep_their_dots() -> None:
    assert flatten_metadata({"a.b": 1}) == {"spanflow.metadata.a.b": 1}


def test_prefix_can_be_chosen() -> None:
    assert flatten_metadata({"a": 1}, prefix="custom") == {"custom.a": 1}


def test_circular_metadata_is_cut_instead_of_recursing_forever() -> None:
    loop: dict[str, object] = {"name": "x"}
    loop["self"] = loop
    assert flatten_metadata(loop) == {
        "spanflow.metadata.name": "x",
        "spanflow.metadata.self": "[circular]",
    }


def test_a_scalar_flattens_to_one_attribute_under_its_key() -> None:
    assert flatten_value("u-1", "k") == {"k": "u-1"}
    assert flatten_value(None, "k") == {}


# --- lookup_path ------------------------------------------------------------------------


def test_literal_dotted_key_is_found_before_walking_the_path() -> None:
    source = {"user.id": "literal", "user": {"id": "walked"}}
    assert lookup_path(source, "user.id") == (True, "literal")


def test_dot_path_walks_nested_dicts() -> None:
    assert lookup_path({"user": {"id": "u-42"}}, "user.id") == (True, "u-42")


def test_dot_path_walks_pydantic_models_and_object_attributes() -> None:
    session = Session()
    assert lookup_path(session, "user.id") == (True, "u-42")
    assert lookup_path({"session": session}, "session.user.plan") == (True, Plan.PRO)
    assert lookup_path(session, "region") == (True, "eu")


def test_dot_path_reads_pydantic_extra_fields() -> None:
    class Open(pydantic.BaseModel):
        model_config = pydantic.ConfigDict(extra="allow")

    assert lookup_path(Open(team="core"), "team") == (True, "core")


def test_integer_segments_index_lists() -> None:
    assert lookup_path({"items": [{"id": "a"}, {"id": "b"}]}, "items.1.id") == (True, "b")
    assert lookup_path({"items": ["a"]}, "items.5") == (False, None)
    assert lookup_path({"items": ["a"]}, "items.-1") == (False, None)


def test_mapping_like_objects_are_read_by_key() -> None:
    assert lookup_path(ContextBag({"tenant": {"id": "t-1"}}), "tenant.id") == (True, "t-1")


def test_missing_keys_are_not_found() -> None:
    assert lookup_path({"user": {"id": "u"}}, "user.name") == (False, None)
    assert lookup_path({"user": {"id": "u"}}, "nobody") == (False, None)
    assert lookup_path(None, "x") == (False, None)


def test_a_present_none_value_is_found() -> None:
    assert lookup_path({"user": None}, "user") == (True, None)


def test_private_attributes_and_methods_are_never_read() -> None:
    session = Session()
    assert lookup_path(session, "_secret") == (False, None)
    assert lookup_path(session, "shout") == (False, None)
    assert lookup_path(session, "__class__") == (False, None)


def test_a_path_through_a_scalar_leaf_is_missing() -> None:
    assert lookup_path({"n": 42}, "n.real") == (False, None)
    assert lookup_path({"s": "text"}, "s.upper") == (False, None)


_segments = st.text(alphabet="abcxyz_", min_size=1, max_size=4)
_leaves = st.one_of(st.integers(), st.text(max_size=5), st.booleans(), st.none())
_trees = st.recursive(
    _leaves,
    lambda children: st.dictionaries(_segments, children, min_size=1, max_size=4),
    max_leaves=20,
)


def _leaf_paths(tree: object, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, object]]:
    if isinstance(tree, dict):
        for key, child in tree.items():
            yield from _leaf_paths(child, (*prefix, key))
    else:
        yield ".".join(prefix), tree


@given(st.dictionaries(_segments, _trees, min_size=1, max_size=4))
def test_every_leaf_of_a_nested_dict_is_found_by_its_dot_path(tree: dict[str, object]) -> None:
    for path, leaf in _leaf_paths(tree):
        assert lookup_path(tree, path) == (True, leaf)


@given(
    st.dictionaries(_segments, _trees, min_size=1, max_size=4),
    st.lists(_segments, min_size=1, max_size=4),
)
def test_a_path_outside_a_nested_dict_is_not_found(
    tree: dict[str, object], segments: list[str]
) -> None:
    path = ".".join(segments)
    expected: object = tree
    for segment in segments:
        if not isinstance(expected, dict) or segment not in expected:
            assert lookup_path(tree, path) == (False, None)
            return
        expected = expected[segment]
    assert lookup_path(tree, path) == (True, expected)


# --- request_context_attributes ---------------------------------------------------------


def test_request_context_key_lands_under_spanflow_metadata() -> None:
    context = {"user": {"id": "u-42", "email": "a@b.c"}, "tenant": "acme"}
    assert request_context_attributes(context, ["user.id", "tenant"]) == {
        "spanflow.metadata.user.id": "u-42",
        "spanflow.metadata.tenant": "acme",
    }


def test_request_context_mapping_leaf_is_flattened_below_its_key() -> None:
    assert request_context_attributes({"user": User(id="u", plan=Plan.PRO)}, ["user"]) == {
        "spanflow.metadata.user.id": "u",
        "spanflow.metadata.user.plan": "pro",
    }


def test_missing_request_context_keys_are_skipped() -> None:
    assert request_context_attributes({"a": 1}, ["b", "a.c"]) == {}
    assert request_context_attributes(None, ["a"]) == {}


def test_with_a_redactor_credential_keys_are_skipped_and_values_redacted() -> None:
    context = {"auth": {"token": "t"}, "user": {"id": "u", "password": "p"}}
    attributes = request_context_attributes(context, ["auth.token", "user"], redactor=Redactor())
    assert attributes == {
        "spanflow.metadata.user.id": "u",
        "spanflow.metadata.user.password": "[REDACTED]",
    }


# --- tags -------------------------------------------------------------------------------


def test_tags_become_a_display_array_and_one_searchable_flag_each() -> None:
    assert tag_attributes(["beta", "eu"]) == {
        "spanflow.tags": ("beta", "eu"),
        "spanflow.tag.beta": True,
        "spanflow.tag.eu": True,
    }


def test_duplicate_tags_are_kept_once_in_order() -> None:
    assert tag_attributes(["b", "a", "b"])["spanflow.tags"] == ("b", "a")


def test_no_tags_give_no_attributes() -> None:
    assert tag_attributes([]) == {}


# --- limits -----------------------------------------------------------------------------


def test_long_strings_and_string_arrays_are_truncated_other_values_kept() -> None:
    attributes: dict[str, AttributeValue] = {"s": "x" * 100, "a": ("y" * 100,), "i": 10**6}
    limited = limit_attribute_lengths(attributes, 40)
    assert isinstance(limited["s"], str)
    assert len(limited["s"]) == 40
    assert limited["s"].endswith("chars]")
    assert isinstance(limited["a"], tuple)
    assert len(str(limited["a"][0])) == 40
    assert limited["i"] == 10**6
