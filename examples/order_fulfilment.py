"""Order fulfilment: the spanflow showcase workflow (what ``spanflow demo`` runs).

An online shop's order goes through every kind of entry a workflow can have::

    validate-order
      -> reserve-inventory ∥ check-fraud            parallel
      -> express-shipping | standard-shipping       branch on the order's shipping method
      -> plan-packing                               map: one packing task per line item
      -> pack-item × N, 3 at a time                 foreach
      -> build-invoice                              map: totals, carrier, parcels
      -> manager-approval                           suspends orders over $1,000 for a human
      -> charge-payment
      -> confirmation-brief                         map: the facts the message must tell
      -> write-confirmation                         agent: looks up the delivery window, writes
      -> send-confirmation

``write-confirmation`` is an agent (`confirmation_writer`) used as a step: it calls the
``lookup_delivery_window`` tool, then streams a short message, and every chunk it streams
travels in the workflow's stream as a ``workflow-step-output`` event; its token usage is added
to the run's. By default its model is `scripted_writer`, a `ScriptedModel` that answers from the
prompt and the tool result, so the example needs no network or key; pass another model to
`build_order_workflow` (``spanflow demo`` does when ``SPANFLOW_DEMO_BASE_URL`` is set).

Inputs and outputs are pydantic models, so every hand-over between steps is validated. The
steps only pretend to call other systems: each sleeps for a short, seeded delay, scaled by
the ``simulated_latency`` request-context value (1 = as written, 0 = no delay), so a run is
deterministic and tests can run it at full speed::

    run = await order_workflow.create_run()
    result = await run.start(sample_order(), request_context={SIMULATED_LATENCY: 0})
    assert result.status == "suspended"                 # the total is over $1,000
    result = await run.resume(ManagerDecision(approved=True, approver="Grace Hopper"))
    assert result.status == "success"                   # result.result: OrderConfirmation
    assert result.usage.total_tokens > 0                # the confirmation writer's tokens

`sample_tracing()` is how the demo traces the run: with metadata and a tag, so its spans can be
found in Jaeger by ``spanflow.metadata.user.id=u-42`` or ``spanflow.tag.vip=true``.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from spanflow import (
    ConditionContext,
    Spanflow,
    StepContext,
    TracingOptions,
    Workflow,
    create_workflow,
    step,
)
from spanflow.agents import (
    Agent,
    AgentStepInput,
    AgentStepOutput,
    Model,
    ScriptedModel,
    ScriptedReply,
    ScriptedToolCall,
    ToolContext,
    tool,
)
from spanflow.agents.models import ModelRequest, last_tool_results, last_user_text

__all__ = [  # noqa: RUF022 - grouped by purpose, not sorted
    # The workflow
    "APPROVAL_THRESHOLD",
    "SIMULATED_LATENCY",
    "app",
    "build_app",
    "build_order_workflow",
    "confirmation_writer",
    "order_workflow",
    "sample_order",
    "sample_tracing",
    # Steps and branch conditions
    "build_invoice",
    "charge_payment",
    "check_fraud",
    "confirmation_brief",
    "express_shipping",
    "manager_approval",
    "pack_item",
    "plan_packing",
    "reserve_inventory",
    "send_confirmation",
    "ships_express",
    "ships_standard",
    "standard_shipping",
    "validate_order",
    # The confirmation writer's tool and scripted model
    "WRITER_INSTRUCTIONS",
    "lookup_delivery_window",
    "scripted_writer",
    # Helpers
    "money",
    "simulate_io",
    # Data
    "ApprovalRequest",
    "ApprovedInvoice",
    "Customer",
    "DeliveryWindow",
    "FraudAssessment",
    "FulfilmentChecks",
    "InventoryReservation",
    "Invoice",
    "LineItem",
    "ManagerDecision",
    "Order",
    "OrderConfirmation",
    "OrderRejectedError",
    "PackedParcel",
    "PackingTask",
    "PaymentReceipt",
    "ShippingQuote",
    "ValidatedOrder",
]

APPROVAL_THRESHOLD = Decimal("1000.00")
"""Orders whose total is above this wait for a manager's approval."""

SIMULATED_LATENCY = "simulated_latency"
"""Request-context key: the factor applied to every simulated delay (default 1; 0 = none)."""


# -- data ----------------------------------------------------------------------------------


class Customer(BaseModel):
    """Who placed the order."""

    id: str
    name: str
    email: str


class LineItem(BaseModel):
    """One line of an order."""

    sku: str
    name: str
    quantity: int = Field(gt=0)
    unit_price: Decimal = Field(gt=0, decimal_places=2)
    unit_weight_kg: float = Field(gt=0)


class Order(BaseModel):
    """The workflow's input: an order as the shop's checkout submits it."""

    order_id: str
    customer: Customer
    items: list[LineItem] = Field(min_length=1)
    shipping: Literal["express", "standard"]
    destination: str


class ValidatedOrder(Order):
    """An order whose lines were checked, with its totals worked out."""

    units: int
    subtotal: Decimal


class InventoryReservation(BaseModel):
    """Stock held for the order in one warehouse."""

    reservation_id: str
    warehouse: str
    units: int


class FraudAssessment(BaseModel):
    """The risk engine's verdict."""

    score: float
    verdict: Literal["clear", "review"]


class FulfilmentChecks(BaseModel):
    """The output of the parallel block: ``{step_id: output}``, read through aliases."""

    inventory: InventoryReservation = Field(alias="reserve-inventory")
    fraud: FraudAssessment = Field(alias="check-fraud")


class ShippingQuote(BaseModel):
    """What the chosen shipping branch booked."""

    method: Literal["express", "standard"]
    carrier: str
    ships_from: str
    cost: Decimal
    eta_days: int


class PackingTask(BaseModel):
    """One line item to pack (an element of the foreach's input list)."""

    order_id: str
    sku: str
    name: str
    quantity: int
    unit_weight_kg: float


class PackedParcel(BaseModel):
    """A packed line item (an element of the foreach's output list)."""

    sku: str
    box: Literal["S", "M", "L"]
    weight_kg: float


class Invoice(BaseModel):
    """What the customer owes."""

    order_id: str
    customer: str
    email: str
    subtotal: Decimal
    shipping: Decimal
    total: Decimal
    carrier: str
    eta_days: int
    parcels: int
    weight_kg: float


class ApprovalRequest(BaseModel):
    """What ``manager-approval`` suspends with: everything a manager needs to decide."""

    order_id: str
    customer: str
    total: Decimal
    threshold: Decimal
    reason: str


class ManagerDecision(BaseModel):
    """What a manager resumes ``manager-approval`` with."""

    approved: bool
    approver: str
    note: str = ""


class ApprovedInvoice(Invoice):
    """An invoice cleared for charging."""

    approved_by: str


class PaymentReceipt(BaseModel):
    """The payment provider's answer."""

    transaction_id: str
    amount: Decimal
    currency: Literal["USD"] = "USD"


class DeliveryWindow(BaseModel):
    """What ``lookup_delivery_window`` answers."""

    carrier: str
    region: str
    arrives: str
    """When the parcels arrive, as the customer is told (``tomorrow by 10:30 am``)."""


class OrderConfirmation(BaseModel):
    """The workflow's output: what the customer is told."""

    model_config = ConfigDict(frozen=True)

    order_id: str
    status: Literal["confirmed"] = "confirmed"
    transaction_id: str
    total: Decimal
    carrier: str
    eta_days: int
    parcels: int
    approved_by: str
    emailed_to: str
    message: str
    """The confirmation the customer was emailed, as ``write-confirmation`` wrote it."""


class OrderRejectedError(Exception):
    """A manager declined the order; the run fails with this error."""


# -- helpers -------------------------------------------------------------------------------


def money(amount: Decimal) -> str:
    """``$1,194.20``."""
    return f"${amount:,.2f}"


async def simulate_io(ctx: StepContext[Any] | ToolContext, seconds: float) -> None:
    """Stand-in for a call to another system: sleep `seconds` × the run's latency factor."""
    factor = float(ctx.request_context.get(SIMULATED_LATENCY, 1.0))
    if factor > 0:
        await asyncio.sleep(seconds * factor)


def _stable_id(prefix: str, *parts: str) -> str:
    digest = hashlib.sha256("/".join(parts).encode()).hexdigest()
    return f"{prefix}_{digest[:12]}"


# -- steps ---------------------------------------------------------------------------------


@step(id="validate-order", input_schema=Order, output_schema=ValidatedOrder)
async def validate_order(ctx: StepContext[Order]) -> ValidatedOrder:
    """Check the order's lines and work out its subtotal."""
    order = ctx.input_data
    await simulate_io(ctx, 0.06)
    units = sum(item.quantity for item in order.items)
    subtotal = sum((item.unit_price * item.quantity for item in order.items), Decimal("0.00"))
    await ctx.writer.write(
        f"{len(order.items)} line items ({units} units), subtotal {money(subtotal)}"
    )
    return ValidatedOrder(**order.model_dump(), units=units, subtotal=subtotal)


@step(id="reserve-inventory", input_schema=ValidatedOrder, output_schema=InventoryReservation)
async def reserve_inventory(ctx: StepContext[ValidatedOrder]) -> InventoryReservation:
    """Hold stock for every line in the warehouse nearest the destination."""
    order = ctx.input_data
    await simulate_io(ctx, 0.18)
    warehouse = "RIC-1" if order.destination.endswith(", US") else "AMS-2"
    await ctx.writer.write(f"held {order.units} units at warehouse {warehouse}")
    return InventoryReservation(
        reservation_id=_stable_id("res", order.order_id), warehouse=warehouse, units=order.units
    )


@step(id="check-fraud", input_schema=ValidatedOrder, output_schema=FraudAssessment)
async def check_fraud(ctx: StepContext[ValidatedOrder]) -> FraudAssessment:
    """Score the order's risk (seeded by customer and order, so it is repeatable)."""
    order = ctx.input_data
    await simulate_io(ctx, 0.14)
    score = round(random.Random(f"{order.customer.id}/{order.order_id}").uniform(0.02, 0.3), 2)
    verdict: Literal["clear", "review"] = "clear" if score < 0.7 else "review"
    await ctx.writer.write(f"risk score {score:.2f}: {verdict}")
    return FraudAssessment(score=score, verdict=verdict)


def ships_express(ctx: ConditionContext) -> bool:
    """Branch condition: the customer paid for express delivery."""
    order: Order = ctx.get_init_data()
    return order.shipping == "express"


def ships_standard(ctx: ConditionContext) -> bool:
    """Branch condition: standard delivery."""
    order: Order = ctx.get_init_data()
    return order.shipping == "standard"


@step(id="express-shipping", input_schema=FulfilmentChecks, output_schema=ShippingQuote)
async def express_shipping(ctx: StepContext[FulfilmentChecks]) -> ShippingQuote:
    """Book next-day delivery."""
    await simulate_io(ctx, 0.09)
    return ShippingQuote(
        method="express",
        carrier="UPS Next Day Air",
        ships_from=ctx.input_data.inventory.warehouse,
        cost=Decimal("24.90"),
        eta_days=1,
    )


@step(id="standard-shipping", input_schema=FulfilmentChecks, output_schema=ShippingQuote)
async def standard_shipping(ctx: StepContext[FulfilmentChecks]) -> ShippingQuote:
    """Book ground delivery (free over $500)."""
    await simulate_io(ctx, 0.09)
    order: ValidatedOrder = ctx.get_step_result(validate_order)
    return ShippingQuote(
        method="standard",
        carrier="USPS Ground Advantage",
        ships_from=ctx.input_data.inventory.warehouse,
        cost=Decimal("0.00") if order.subtotal > 500 else Decimal("6.90"),
        eta_days=4,
    )


def plan_packing(ctx: StepContext[Any]) -> list[PackingTask]:
    """Map: one packing task per line item of the validated order."""
    order: ValidatedOrder = ctx.get_step_result(validate_order)
    return [
        PackingTask(
            order_id=order.order_id,
            sku=i.sku,
            name=i.name,
            quantity=i.quantity,
            unit_weight_kg=i.unit_weight_kg,
        )
        for i in order.items
    ]


@step(id="pack-item", input_schema=PackingTask, output_schema=PackedParcel)
async def pack_item(ctx: StepContext[PackingTask]) -> PackedParcel:
    """Pick and pack one line item. Runs once per item, a few at a time."""
    task = ctx.input_data
    rng = random.Random(f"{task.order_id}/{task.sku}")  # same order, same delays and packing
    await simulate_io(ctx, rng.uniform(0.05, 0.2))
    packaging = rng.uniform(0.05, 0.3)
    weight = round(task.unit_weight_kg * task.quantity + packaging, 2)
    box: Literal["S", "M", "L"] = "S" if weight < 0.5 else "M" if weight < 3 else "L"
    return PackedParcel(sku=task.sku, box=box, weight_kg=weight)


def build_invoice(ctx: StepContext[Any]) -> Invoice:
    """Map: the packed parcels plus the order and its shipping quote make the invoice."""
    parcels: list[PackedParcel] = ctx.input_data
    order: ValidatedOrder = ctx.get_step_result(validate_order)
    quote: ShippingQuote = ctx.get_step_result(express_shipping) or ctx.get_step_result(
        standard_shipping
    )
    return Invoice(
        order_id=order.order_id,
        customer=order.customer.name,
        email=order.customer.email,
        subtotal=order.subtotal,
        shipping=quote.cost,
        total=order.subtotal + quote.cost,
        carrier=quote.carrier,
        eta_days=quote.eta_days,
        parcels=len(parcels),
        weight_kg=round(sum(p.weight_kg for p in parcels), 2),
    )


@step(
    id="manager-approval",
    input_schema=Invoice,
    output_schema=ApprovedInvoice,
    suspend_schema=ApprovalRequest,
    resume_schema=ManagerDecision,
)
async def manager_approval(ctx: StepContext[Invoice]) -> ApprovedInvoice:
    """Large orders wait for a manager: the run suspends until someone decides."""
    invoice = ctx.input_data
    if invoice.total <= APPROVAL_THRESHOLD:
        return ApprovedInvoice(**invoice.model_dump(), approved_by="auto (under the limit)")
    decision: ManagerDecision | None = ctx.resume_data
    if decision is None:
        await ctx.writer.write(
            f"{money(invoice.total)} is over the {money(APPROVAL_THRESHOLD)} limit: "
            "asking a manager"
        )
        ctx.suspend(
            ApprovalRequest(
                order_id=invoice.order_id,
                customer=invoice.customer,
                total=invoice.total,
                threshold=APPROVAL_THRESHOLD,
                reason=f"orders over {money(APPROVAL_THRESHOLD)} need a manager's approval",
            )
        )
    if not decision.approved:
        raise OrderRejectedError(
            f"order {invoice.order_id} was declined by {decision.approver}: {decision.note}"
        )
    await ctx.writer.write(f"approved by {decision.approver}")
    return ApprovedInvoice(**invoice.model_dump(), approved_by=decision.approver)


@step(id="charge-payment", input_schema=ApprovedInvoice, output_schema=PaymentReceipt)
async def charge_payment(ctx: StepContext[ApprovedInvoice]) -> PaymentReceipt:
    """Charge the customer's card for the invoice total."""
    invoice = ctx.input_data
    await simulate_io(ctx, 0.16)
    return PaymentReceipt(
        transaction_id=_stable_id("txn", invoice.order_id, str(invoice.total)),
        amount=invoice.total,
    )


def confirmation_brief(ctx: StepContext[Any]) -> AgentStepInput:
    """Map: the facts the confirmation must tell, as the writer's prompt (one per line)."""
    receipt: PaymentReceipt = ctx.input_data
    invoice: ApprovedInvoice = ctx.get_step_result(manager_approval)
    order: ValidatedOrder = ctx.get_step_result(validate_order)
    facts = {
        "order": order.order_id,
        "customer": order.customer.name,
        "items": f"{order.units} items in {invoice.parcels} parcels",
        "charged": money(receipt.amount),
        "carrier": invoice.carrier,
        "destination": order.destination,
    }
    lines = [f"{key}: {value}" for key, value in facts.items()]
    return AgentStepInput(prompt="Write the confirmation for this order.\n\n" + "\n".join(lines))


@step(id="send-confirmation", input_schema=AgentStepOutput, output_schema=OrderConfirmation)
async def send_confirmation(ctx: StepContext[AgentStepOutput]) -> OrderConfirmation:
    """Email the customer the message ``write-confirmation`` wrote."""
    receipt: PaymentReceipt = ctx.get_step_result(charge_payment)
    invoice: ApprovedInvoice = ctx.get_step_result(manager_approval)
    await simulate_io(ctx, 0.07)
    await ctx.writer.write(f"emailed {invoice.email}")
    return OrderConfirmation(
        order_id=invoice.order_id,
        transaction_id=receipt.transaction_id,
        total=receipt.amount,
        carrier=invoice.carrier,
        eta_days=invoice.eta_days,
        parcels=invoice.parcels,
        approved_by=invoice.approved_by,
        emailed_to=invoice.email,
        message=ctx.input_data.text.strip(),
    )


# -- the confirmation writer ---------------------------------------------------------------

WRITER_INSTRUCTIONS = (
    "You write the email that confirms an order to a customer of a small online shop. "
    "First call lookup_delivery_window with the order's carrier and the region of its "
    "destination (the state or province and the country code, as in 'VA, US'). Then write "
    "two or three warm sentences of plain text, under 60 words in all: greet the customer by "
    "first name, name the order and the amount charged, say when the parcels arrive, and sign "
    "as The Spanflow Shop. No subject line, no placeholders."
)
"""The writer's system prompt (what a real model is told; the scripted one follows it)."""

_DELIVERY_PROMISES = {
    "UPS Next Day Air": ("tomorrow by 10:30 am", "in 2 business days"),
    "USPS Ground Advantage": ("in 2 to 5 business days", "in 4 to 8 business days"),
}
"""carrier -> (when it delivers to the contiguous US, when it delivers elsewhere)."""
_FAR_REGIONS = ("AK, US", "HI, US", "PR, US")


@tool
async def lookup_delivery_window(carrier: str, region: str, ctx: ToolContext) -> DeliveryWindow:
    """When a carrier's parcels arrive in a region: a state or province, as in 'VA, US'."""
    await simulate_io(ctx, 0.12)
    promises = _DELIVERY_PROMISES.get(carrier)
    if promises is None:
        known = ", ".join(_DELIVERY_PROMISES)
        raise ValueError(f"unknown carrier {carrier!r}; the shop ships with {known}")
    near = region.upper().endswith(", US") and region.upper() not in _FAR_REGIONS
    return DeliveryWindow(carrier=carrier, region=region, arrives=promises[0 if near else 1])


def _facts(prompt: str) -> dict[str, str]:
    """The ``key: value`` lines of a `confirmation_brief` prompt."""
    pairs = (line.split(": ", 1) for line in prompt.splitlines() if ": " in line)
    return {key.strip(): value.strip() for key, value in pairs}


def _write_confirmation(request: ModelRequest) -> ScriptedReply:
    """The scripted writer's turn: first ask for the delivery window, then write the message."""
    facts = _facts(last_user_text(request))
    results = last_tool_results(request)
    if not results:
        region = ", ".join(facts.get("destination", "").split(", ")[-2:])
        lookup = {"carrier": facts.get("carrier", ""), "region": region}
        return ScriptedReply(tool_calls=[ScriptedToolCall("lookup_delivery_window", lookup)])
    try:
        arrives = "arriving " + DeliveryWindow.model_validate_json(results[-1].content).arrives
    except ValueError:  # the tool failed: the model is told the error instead of a window
        arrives = "and we will email you the tracking link as soon as they leave"
    first_name = (facts.get("customer") or "there").split()[0]
    return ScriptedReply(
        f"Hi {first_name}, thank you for your order {facts.get('order', '')}! We have charged "
        f"{facts.get('charged', 'your card')} to your card, and your {facts.get('items', 'items')} "
        f"are on their way with {facts.get('carrier', 'our carrier')}, {arrives}. "
        "Enjoy them!\n\nThe Spanflow Shop"
    )


def scripted_writer() -> ScriptedModel:
    """The writer's default model: replies scripted from the prompt and the tool result."""
    return ScriptedModel(_write_confirmation)


def confirmation_writer(model: Model | None = None) -> Agent:
    """The agent behind ``write-confirmation``, on `model` (default: `scripted_writer()`)."""
    return Agent(
        id="confirmation-writer",
        name="Confirmation writer",
        description="Writes the customer's order confirmation.",
        instructions=WRITER_INSTRUCTIONS,
        model=model or scripted_writer(),
        tools=[lookup_delivery_window],
        max_steps=3,
    )


# -- the workflow --------------------------------------------------------------------------


def build_order_workflow(writer: Agent | None = None) -> Workflow:
    """A new, committed order-fulfilment workflow (in-memory storage until you set one).

    Args:
        writer: The agent of ``write-confirmation``; default: `confirmation_writer()`, on the
            scripted model. Its spans go to OpenTelemetry's global tracer provider unless you
            set its ``instrumentation`` (to the workflow's, say).
    """
    return (
        create_workflow(
            id="order-fulfilment",
            description=(
                "Validate, reserve, ship, pack, approve, charge, and write and send the "
                "confirmation of an order."
            ),
            input_schema=Order,
            output_schema=OrderConfirmation,
        )
        .then(validate_order)
        .parallel([reserve_inventory, check_fraud])
        .branch([(ships_express, express_shipping), (ships_standard, standard_shipping)])
        .map(plan_packing, id="plan-packing", output_schema=list[PackingTask])
        .foreach(pack_item, concurrency=3)
        .map(build_invoice, id="build-invoice", output_schema=Invoice)
        .then(manager_approval)
        .then(charge_payment)
        .map(confirmation_brief, id="confirmation-brief", output_schema=AgentStepInput)
        .then((writer or confirmation_writer()).as_step("write-confirmation"))
        .then(send_confirmation)
        .commit()
    )


order_workflow = build_order_workflow()
"""The committed workflow, importable as ``examples.order_fulfilment:order_workflow``."""


def build_app() -> Spanflow:
    """The registry ``spanflow serve examples.order_fulfilment:app`` serves: a workflow of its
    own (so `order_workflow` keeps its private store) and its writer agent, on the default
    store (``SPANFLOW_STORAGE_URL``, else ``spanflow.db`` here)."""
    writer = confirmation_writer()
    return Spanflow(workflows=[build_order_workflow(writer)], agents=[writer])


app = build_app()
"""``spanflow serve examples.order_fulfilment:app`` (nothing is opened until the first run)."""


def sample_order() -> dict[str, Any]:
    """A home-office order of 7 line items, shipped express: $1,194.20, so it needs approval."""
    lines = [  # sku, name, quantity, unit price, unit weight (kg)
        ("KB-87-BRN", "Mechanical keyboard, brown switches", 1, "149.00", 1.1),
        ("MS-ERG-01", "Ergonomic mouse", 1, "79.50", 0.12),
        ("MN-27-4K", '27" 4K monitor', 2, "329.00", 6.4),
        ("ARM-DUAL", "Dual monitor arm", 1, "119.00", 2.6),
        ("MAT-XL", "Desk mat, XL", 2, "24.90", 0.45),
        ("CBL-USBC-2M", "USB-C cable, 2 m", 4, "12.50", 0.05),
        ("LMP-LED-01", "LED desk lamp", 1, "64.00", 0.8),
    ]
    return {
        "order_id": "ORD-20417",
        "customer": {
            "id": "CUS-1918",
            "name": "Katherine Johnson",
            "email": "katherine.johnson@example.com",
        },
        "items": [
            {
                "sku": sku,
                "name": name,
                "quantity": quantity,
                "unit_price": price,
                "unit_weight_kg": weight,
            }
            for sku, name, quantity, price, weight in lines
        ],
        "shipping": "express",
        "destination": "Hampton, VA, US",
    }


def sample_tracing() -> TracingOptions:
    """The demo run's tracing options: the shop user who placed the order, the order, a tag.

    Each metadata leaf becomes one span attribute (``spanflow.metadata.user.id = "u-42"``,
    ``spanflow.metadata.order.id = "ORD-20417"``) and the tag ``spanflow.tag.vip = true``, on
    every span of the run and of its resumed half.
    """
    return TracingOptions(
        metadata={"user": {"id": "u-42"}, "order": {"id": "ORD-20417"}}, tags=["vip"]
    )
