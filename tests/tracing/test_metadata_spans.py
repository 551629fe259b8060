"""Tags, metadata and request-context keys land as flat attributes Jaeger can search.

Jaeger matches a search tag by exact string equality on one span and cannot look inside JSON,
so metadata is flattened to one ``spanflow.metadata.<path>`` attribute per leaf, each tag is its
own ``spanflow.tag.<tag> = true``, and by default all of them are copied to every span of the
run (so a search combining several of them, or a step searched by its run's user, matches).
"""

from __future__ import annotations

from typing import Any

import pydantic
import pytest
from spanflow_otel.testing import SpanCapture

from spanflow import (
    StepContext,
    TracingConfig,
    TracingOptions,
    create_workflow,
    step,
)

from .span_helpers import attribute, expected, run, span_named, traced, tree


@step
async def price(ctx: StepContext[int]) -> int:
    with ctx.tracing.span("fetch prices"):
        return ctx.input_data * 3


@step
async def tax(ctx: StepContext[int]) -> int:
    return ctx.input_data // 5


@step
async def ship(ctx: StepContext[Any]) -> str:
    return "shipped"


def checkout() -> Any:
    """A workflow with every kind of span: steps, a block, a nested run, a user span."""
    shipping = create_workflow(id="shipping").then(ship).commit()
    return create_workflow(id="checkout").then(price).parallel([tax]).then(shipping).commit()


def searchable(span: Any) -> dict[str, Any]:
    """The tag and metadata attributes of a span."""
    return {
        key: list(value) if isinstance(value, tuple) else value
        for key, value in (span.attributes or {}).items()
        if key.startswith(("spanflow.metadata.", "spanflow.tag"))
    }


async def test_metadata_and_tags_are_on_every_span_of_the_run(span_capture: SpanCapture) -> None:
    options = TracingOptions(
        tags=["beta", "checkout-v2"], metadata={"user": {"id": "u-42"}, "plan": "pro"}
    )

    await run(checkout(), 10, options=options)

    expected_attributes = {
        "spanflow.metadata.user.id": "u-42",
        "spanflow.metadata.plan": "pro",
        "spanflow.tags": ["beta", "checkout-v2"],
        "spanflow.tag.beta": True,
        "spanflow.tag.checkout-v2": True,
    }
    assert {span.name: searchable(span) for span in span_capture.spans} == {
        "fetch prices": expected_attributes,
        "workflow_step price": expected_attributes,
        "workflow_step tax": expected_attributes,
        "parallel 1 branches": expected_attributes,
        "workflow_step ship": expected_attributes,
        "invoke_workflow shipping": expected_attributes,
        "workflow_step shipping": expected_attributes,
        "invoke_workflow checkout": expected_attributes,
    }


async def test_metadata_is_flattened_to_one_attribute_per_leaf_keeping_scalar_types(
    span_capture: SpanCapture,
) -> None:
    metadata: dict[str, Any] = {
        "user": {"id": "u-42", "admin": False, "org": {"id": 7}},
        "score": 0.25,
        "experiment": None,
        "regions": ["eu", "us"],
        "mixed": [1, "two"],
    }

    await run(checkout(), 10, options=TracingOptions(metadata=metadata))

    assert searchable(span_named(span_capture, "invoke_workflow checkout")) == {
        "spanflow.metadata.user.id": "u-42",
        "spanflow.metadata.user.admin": False,
        "spanflow.metadata.user.org.id": 7,
        "spanflow.metadata.score": 0.25,
        "spanflow.metadata.regions": ["eu", "us"],
        "spanflow.metadata.mixed": '[1,"two"]',
    }


async def test_metadata_may_be_a_pydantic_model(span_capture: SpanCapture) -> None:
    class Customer(pydantic.BaseModel):
        id: str
        tier: str

    options = TracingOptions(metadata={"customer": Customer(id="c-1", tier="gold")})

    await run(checkout(), 10, options=options)

    assert searchable(span_named(span_capture, "workflow_step price")) == {
        "spanflow.metadata.customer.id": "c-1",
        "spanflow.metadata.customer.tier": "gold",
    }


class Tenant(pydantic.BaseModel):
    id: str
    region: str


async def test_request_context_keys_are_looked_up_as_literal_keys_then_dot_paths(
    span_capture: SpanCapture,
) -> None:
    request_context = {
        "user": {"id": "u-42", "email": "ada@example.com"},  # a nested dict
        "tenant": Tenant(id="acme", region="eu"),  # a pydantic model
        "feature.flag": "on",  # a literal key with a dot in it
        "cart": {"items": [{"sku": "A-1"}, {"sku": "B-2"}]},
        "locale": "fr-FR",  # present but not listed: never exported
    }
    keys = ["user.id", "tenant.region", "feature.flag", "cart.items.1.sku", "session_less.missing"]

    await run(
        checkout(),
        10,
        request_context=request_context,
        options=TracingOptions(request_context_keys=keys),
    )

    assert searchable(span_named(span_capture, "workflow_step tax")) == {
        "spanflow.metadata.user.id": "u-42",
        "spanflow.metadata.tenant.region": "eu",
        "spanflow.metadata.feature.flag": "on",
        "spanflow.metadata.cart.items.1.sku": "B-2",
    }


async def test_a_request_context_key_naming_a_mapping_or_model_is_flattened_below_it(
    span_capture: SpanCapture,
) -> None:
    request_context = {"tenant": Tenant(id="acme", region="eu"), "user": {"id": "u-42"}}

    await run(
        checkout(),
        10,
        request_context=request_context,
        options=TracingOptions(request_context_keys=["tenant", "user"]),
    )

    assert searchable(span_named(span_capture, "invoke_workflow checkout")) == {
        "spanflow.metadata.tenant.id": "acme",
        "spanflow.metadata.tenant.region": "eu",
        "spanflow.metadata.user.id": "u-42",
    }


async def test_a_literal_dotted_key_wins_over_the_dot_path(span_capture: SpanCapture) -> None:
    request_context = {"user.id": "literal", "user": {"id": "walked"}}

    await run(
        checkout(),
        10,
        request_context=request_context,
        options=TracingOptions(request_context_keys=["user.id"]),
    )

    assert attribute(
        span_named(span_capture, "workflow_step price"), "spanflow.metadata.user.id"
    ) == ("literal")


async def test_explicit_metadata_wins_over_a_request_context_key(span_capture: SpanCapture) -> None:
    options = TracingOptions(metadata={"plan": "enterprise"}, request_context_keys=["plan"])

    await run(checkout(), 10, request_context={"plan": "free"}, options=options)

    assert attribute(span_named(span_capture, "workflow_step price"), "spanflow.metadata.plan") == (
        "enterprise"
    )


async def test_request_context_keys_configured_globally_apply_to_every_run(
    span_capture: SpanCapture,
) -> None:
    workflow = traced(checkout(), TracingConfig(request_context_keys=("tenant.id",)))

    await run(
        workflow,
        10,
        request_context={"tenant": {"id": "acme"}, "user": {"id": "u-42"}},
        options=TracingOptions(request_context_keys=["user.id"]),
    )

    assert searchable(span_named(span_capture, "workflow_step ship")) == {
        "spanflow.metadata.tenant.id": "acme",
        "spanflow.metadata.user.id": "u-42",
    }


@pytest.mark.parametrize("key", ["api_key", "auth.token", "session.id", "Authorization"])
async def test_a_credential_request_context_key_is_rejected_and_never_exported(
    span_capture: SpanCapture, key: str
) -> None:
    request_context = {
        "api_key": "sk-live-1",
        "auth": {"token": "tok-1"},
        "session": {"id": "sess-1"},
        "Authorization": "Bearer abc",
    }

    result = await run(
        checkout(),
        10,
        request_context=request_context,
        options=TracingOptions(request_context_keys=[key]),
    )

    assert result.status == "success"
    run_span = span_named(span_capture, "invoke_workflow checkout")
    assert attribute(run_span, "spanflow.tracing.rejected") == [
        f"request_context_keys[0]: '{key}' names a credential, which is never exported"
    ]
    for span in span_capture.spans:
        assert searchable(span) == {}
        assert not any(
            secret in str(value)
            for value in (span.attributes or {}).values()
            for secret in ("sk-live-1", "tok-1", "sess-1", "Bearer abc")
        )


async def test_tags_are_an_array_for_display_and_one_searchable_attribute_each(
    span_capture: SpanCapture,
) -> None:
    options = TracingOptions(tags=["beta", "eu", "beta"])

    await run(checkout(), 10, options=options)

    assert tree(span_capture, "spanflow.tag*", events=False) == expected("""
        invoke_workflow checkout [INTERNAL] UNSET {spanflow.tag.beta=True, spanflow.tag.eu=True, spanflow.tags=['beta', 'eu']}
          workflow_step price [INTERNAL] UNSET {spanflow.tag.beta=True, spanflow.tag.eu=True, spanflow.tags=['beta', 'eu']}
            fetch prices [INTERNAL] UNSET {spanflow.tag.beta=True, spanflow.tag.eu=True, spanflow.tags=['beta', 'eu']}
          parallel 1 branches [INTERNAL] UNSET {spanflow.tag.beta=True, spanflow.tag.eu=True, spanflow.tags=['beta', 'eu']}
            workflow_step tax [INTERNAL] UNSET {spanflow.tag.beta=True, spanflow.tag.eu=True, spanflow.tags=['beta', 'eu']}
          workflow_step shipping [INTERNAL] UNSET {spanflow.tag.beta=True, spanflow.tag.eu=True, spanflow.tags=['beta', 'eu']}
            invoke_workflow shipping [INTERNAL] UNSET {spanflow.tag.beta=True, spanflow.tag.eu=True, spanflow.tags=['beta', 'eu']}
              workflow_step ship [INTERNAL] UNSET {spanflow.tag.beta=True, spanflow.tag.eu=True, spanflow.tags=['beta', 'eu']}
    """)  # noqa: E501


async def test_copying_to_every_span_can_be_limited_to_the_run_span(
    span_capture: SpanCapture,
) -> None:
    workflow = traced(checkout(), TracingConfig(metadata_on_every_span=False))
    options = TracingOptions(tags=["beta"], metadata={"plan": "pro"})

    await run(workflow, 10, options=options)

    shown = ("spanflow.tag*", "spanflow.metadata.*", "spanflow.run.id", "spanflow.workflow.id")
    assert tree(span_capture, *shown, events=False) == expected("""
        invoke_workflow checkout [INTERNAL] UNSET {spanflow.metadata.plan='pro', spanflow.run.id='run-1', spanflow.tag.beta=True, spanflow.tags=['beta'], spanflow.workflow.id='checkout'}
          workflow_step price [INTERNAL] UNSET {spanflow.run.id='run-1', spanflow.workflow.id='checkout'}
            fetch prices [INTERNAL] UNSET {spanflow.run.id='run-1', spanflow.workflow.id='checkout'}
          parallel 1 branches [INTERNAL] UNSET {spanflow.run.id='run-1', spanflow.workflow.id='checkout'}
            workflow_step tax [INTERNAL] UNSET {spanflow.run.id='run-1', spanflow.workflow.id='checkout'}
          workflow_step shipping [INTERNAL] UNSET {spanflow.run.id='run-1', spanflow.workflow.id='checkout'}
            invoke_workflow shipping [INTERNAL] UNSET {spanflow.run.id='run-1', spanflow.workflow.id='shipping'}
              workflow_step ship [INTERNAL] UNSET {spanflow.run.id='run-1', spanflow.workflow.id='shipping'}
    """)  # noqa: E501
