"""The checkout workflow of the README's first example: two typed steps, streamed."""

import asyncio

from pydantic import BaseModel

from spanflow import StepContext, StepOutputPayload, StepResultPayload, create_workflow, step


class Order(BaseModel):
    order_id: str
    amount: float


class Receipt(BaseModel):
    order_id: str
    charged: float


@step(input_schema=Order, output_schema=Order)
async def validate(ctx: StepContext[Order]) -> Order:
    await ctx.writer.write(f"order {ctx.input_data.order_id} looks fine")
    return ctx.input_data


@step(input_schema=Order, output_schema=Receipt)
async def charge(ctx: StepContext[Order]) -> Receipt:
    return Receipt(order_id=ctx.input_data.order_id, charged=ctx.input_data.amount)


checkout = (
    create_workflow(id="checkout", input_schema=Order, output_schema=Receipt)
    .then(validate)
    .then(charge)
    .commit()
)


async def main() -> None:
    run = await checkout.create_run()
    out = run.stream({"order_id": "A-17", "amount": 42.5})
    async for event in out:  # live: events arrive as the steps run
        match event.payload:
            case StepOutputPayload(step_name=name, output=note):
                print(f"  {name} says: {note}")
            case StepResultPayload(step_name=name, status=status):
                print(f"{name}: {status}")
        # event.to_dict() is Mastra's wire shape: {"type", "runId", "from", "payload"}
    result = await out.result
    print(result.status, result.result)


if __name__ == "__main__":
    asyncio.run(main())
