"""The showcase workflow, run through the engine directly (no CLI): suspend, resume, branches."""

from __future__ import annotations

import importlib
from decimal import Decimal
from typing import Any

from examples.order_fulfilment import (
    SIMULATED_LATENCY,
    ApprovalRequest,
    DeliveryWindow,
    ManagerDecision,
    OrderConfirmation,
    OrderRejectedError,
    PackedParcel,
    build_order_workflow,
    confirmation_writer,
    sample_order,
    scripted_writer,
)
from spanflow import Workflow, WorkflowResult
from spanflow.agents import AgentStepOutput
from spanflow.agents.models import last_tool_results
from spanflow.usage import Usage

NO_DELAYS = {SIMULATED_LATENCY: 0}


async def start(order: dict[str, Any]) -> tuple[Any, WorkflowResult]:
    run = await build_order_workflow().create_run()
    return run, await run.start(order, request_context=NO_DELAYS)


def small_standard_order() -> dict[str, Any]:
    order = sample_order()
    order["items"] = order["items"][:2]
    order["shipping"] = "standard"
    return order


async def test_the_sample_order_suspends_for_a_manager() -> None:
    _, result = await start(sample_order())

    assert result.status == "suspended"
    assert result.suspended == [["manager-approval"]]
    assert result.suspend_payload == {
        "manager-approval": ApprovalRequest(
            order_id="ORD-20417",
            customer="Katherine Johnson",
            total=Decimal("1194.20"),
            threshold=Decimal("1000.00"),
            reason="orders over $1,000.00 need a manager's approval",
        )
    }


async def test_an_approved_order_is_charged_and_confirmed() -> None:
    run, _ = await start(sample_order())

    result = await run.resume(ManagerDecision(approved=True, approver="Grace Hopper"))

    assert result.status == "success"
    assert result.result == OrderConfirmation(
        order_id="ORD-20417",
        transaction_id="txn_ace511867e82",
        total=Decimal("1194.20"),
        carrier="UPS Next Day Air",
        eta_days=1,
        parcels=7,
        approved_by="Grace Hopper",
        emailed_to="katherine.johnson@example.com",
        message=(
            "Hi Katherine, thank you for your order ORD-20417! We have charged $1,194.20 to "
            "your card, and your 12 items in 7 parcels are on their way with UPS Next Day Air, "
            "arriving tomorrow by 10:30 am. Enjoy them!\n\nThe Spanflow Shop"
        ),
    )
    assert result.steps["manager-approval"].resume_payload == ManagerDecision(
        approved=True, approver="Grace Hopper"
    )


async def test_every_kind_of_entry_ran_in_order() -> None:
    run, _ = await start(sample_order())
    result = await run.resume(ManagerDecision(approved=True, approver="Grace Hopper"))

    assert [s for s in result.steps if result.steps[s].status == "success"] == [
        "validate-order",
        "reserve-inventory",
        "check-fraud",
        "express-shipping",
        "plan-packing",
        "pack-item",
        "build-invoice",
        "manager-approval",
        "charge-payment",
        "confirmation-brief",
        "write-confirmation",
        "send-confirmation",
    ]
    assert "standard-shipping" not in result.steps


async def test_the_writer_looks_up_the_delivery_window_then_writes_from_the_brief() -> None:
    run, _ = await start(sample_order())
    result = await run.resume(ManagerDecision(approved=True, approver="Grace Hopper"))

    assert result.steps["confirmation-brief"].output.prompt == (
        "Write the confirmation for this order.\n"
        "\n"
        "order: ORD-20417\n"
        "customer: Katherine Johnson\n"
        "items: 12 items in 7 parcels\n"
        "charged: $1,194.20\n"
        "carrier: UPS Next Day Air\n"
        "destination: Hampton, VA, US"
    )
    written: AgentStepOutput = result.steps["write-confirmation"].output
    assert (written.finish_reason, written.steps) == ("stop", 2)  # the tool call, the text
    assert written.text == result.result.message


async def test_the_writers_tokens_are_the_runs_usage_in_the_result_and_the_finish_event() -> None:
    run, _ = await start(sample_order())

    out = run.resume_stream(ManagerDecision(approved=True, approver="Grace Hopper"))
    events = [event.to_dict() async for event in out]
    result = await out.result

    written: AgentStepOutput = result.steps["write-confirmation"].output
    assert written.usage.input_tokens > 0
    assert written.usage.output_tokens > 0
    assert result.usage == written.usage
    assert await out.usage == written.usage
    assert events[-1]["type"] == "workflow-finish"
    assert Usage.from_dict(events[-1]["payload"]["output"]["usage"]) == written.usage


async def test_a_standard_order_far_away_is_promised_a_later_window() -> None:
    order = small_standard_order()
    order["destination"] = "Juneau, AK, US"
    model = scripted_writer()
    run = await build_order_workflow(confirmation_writer(model)).create_run()

    result = await run.start(order, request_context=NO_DELAYS)

    assert result.status == "success"
    assert "with USPS Ground Advantage, arriving in 4 to 8 business days." in result.result.message
    [answer] = last_tool_results(model.requests[1])
    assert DeliveryWindow.model_validate_json(answer.content) == DeliveryWindow(
        carrier="USPS Ground Advantage", region="AK, US", arrives="in 4 to 8 business days"
    )


async def test_foreach_packs_every_line_in_input_order_with_seeded_weights() -> None:
    _, result = await start(sample_order())

    parcels = result.steps["pack-item"].output
    assert [p.sku for p in parcels] == [item["sku"] for item in sample_order()["items"]]
    assert parcels[2] == PackedParcel(sku="MN-27-4K", box="L", weight_kg=13.01)


async def test_a_declined_order_fails_with_the_managers_reason() -> None:
    run, _ = await start(sample_order())

    result = await run.resume(
        ManagerDecision(approved=False, approver="Grace Hopper", note="card looks stolen")
    )

    assert result.status == "failed"
    assert isinstance(result.error, OrderRejectedError)
    assert str(result.error) == ("order ORD-20417 was declined by Grace Hopper: card looks stolen")
    assert "charge-payment" not in result.steps


async def test_a_small_standard_order_needs_no_approval() -> None:
    _, result = await start(small_standard_order())

    assert result.status == "success"
    assert "standard-shipping" in result.steps
    assert "express-shipping" not in result.steps
    assert result.result.approved_by == "auto (under the limit)"
    # 149.00 + 79.50, plus 6.90 standard shipping (free only over $500)
    assert result.result.total == Decimal("235.40")


def test_the_committed_workflow_is_importable_by_name() -> None:
    module_name, _, attribute = "examples.order_fulfilment:order_workflow".partition(":")

    workflow = getattr(importlib.import_module(module_name), attribute)

    assert isinstance(workflow, Workflow)
    assert workflow.committed
    assert workflow.id == "order-fulfilment"
