"""The showcase workflow, run through the engine directly (no CLI): suspend, resume, branches."""

from __future__ import annotations

import importlib
from decimal import Decimal
from typing import Any

from examples.order_fulfilment import (
    SIMULATED_LATENCY,
    ApprovalRequest,
    ManagerDecision,
    OrderConfirmation,
    OrderRejectedError,
    PackedParcel,
    build_order_workflow,
    sample_order,
)
from spanflow import Workflow, WorkflowResult

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
        "send-confirmation",
    ]
    assert "standard-shipping" not in result.steps


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
