"""Workflows the CLI tests run as ``tests.cli.sample_workflows:<name>``."""

from __future__ import annotations

from pydantic import BaseModel

from spanflow import StepContext, create_workflow, step


class Person(BaseModel):
    name: str


class Greeting(BaseModel):
    greeting: str


class Approval(BaseModel):
    approved: bool
    by: str = "someone"


class Question(BaseModel):
    question: str


@step(id="greet", input_schema=Person, output_schema=Greeting)
async def greet(ctx: StepContext[Person]) -> Greeting:
    """Greets, in the language the request context asks for."""
    await ctx.writer.write(f"greeting {ctx.input_data.name}")
    hello = "Bonjour" if ctx.request_context.get("lang") == "fr" else "Hello"
    return Greeting(greeting=f"{hello}, {ctx.input_data.name}!")


@step(
    id="ask",
    input_schema=Greeting,
    output_schema=Greeting,
    suspend_schema=Question,
    resume_schema=Approval,
)
async def ask(ctx: StepContext[Greeting]) -> Greeting:
    """Suspends until someone approves the greeting."""
    decision: Approval | None = ctx.resume_data
    if decision is None:
        ctx.suspend(Question(question=f"send {ctx.input_data.greeting!r}?"))
    return Greeting(greeting=f"{ctx.input_data.greeting} (approved by {decision.by})")


@step(id="explode", input_schema=Person, output_schema=Greeting)
async def explode(ctx: StepContext[Person]) -> Greeting:
    """Always fails."""
    raise ValueError(f"no greeting for {ctx.input_data.name}")


hello = (
    create_workflow(id="hello", input_schema=Person, output_schema=Greeting).then(greet).commit()
)
approval = (
    create_workflow(id="approval", input_schema=Person, output_schema=Greeting)
    .then(greet)
    .then(ask)
    .commit()
)
broken = (
    create_workflow(id="broken", input_schema=Person, output_schema=Greeting).then(explode).commit()
)
unfinished = create_workflow(id="unfinished", input_schema=Person).then(greet)
not_a_workflow = 42
