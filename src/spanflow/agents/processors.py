"""Processors (Mastra's guardrails): small objects that see what goes into and comes out of an
agent call, may rewrite it, and may stop the call with ``ctx.abort(reason)``.

``Agent(..., input_processors=[...], output_processors=[...])``. A processor subclasses
`Processor` (or is any object with a ``name`` and some of its hooks) and overrides what it
needs:

- ``async process_input(messages, ctx) -> messages``: an input processor's hook, run in order
  before the first model call on the caller's messages (and the memory's recalled ones), not
  the system prompt. What it returns is what the model, the memory and the trace see. The
  memory appends the call's own messages among them, never the recalled ones again: a message
  returned unchanged (the same object) keeps its origin, a list as long as the one given is
  taken message by message (a rewrite), and any other message goes with the one before it.
- ``async process_output(text, ctx) -> text``: an output processor's hook, run on each step's
  answer text once it is complete; what it returns becomes the step's and the result's text,
  the assistant message and the ``chat`` span's output (which, with output processors, holds
  no text of a response cut short before they processed it).
- ``process_chunk(chunk, ctx) -> chunk | None``: an output processor's hook, run
  (synchronously) on every chunk before the stream gets it, from ``start`` to the last
  ``step-finish``; ``None`` drops the chunk. The closing ``finish``, ``error``, ``abort`` and
  ``tripwire`` chunks are not shown to processors.

``ctx.abort(reason)`` raises `TripWire` (a `BaseException`, like cancellation: not an error).
The call then ends with status ``tripwire``: a ``tripwire`` chunk, ``result.tripwire`` and
``spanflow.agent.status=tripwire`` on its span, which is not marked as an error. Anything else a
processor raises fails the call with a `ProcessorError` naming it: never a silent pass.

Two processors ship: `RegexRedactor` (with the `PII_PATTERNS` preset, `pii_redactor()`) and
`TokenLimiter`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, NoReturn

from spanflow.agents.chunks import AgentChunk, ObjectPayload, TextDeltaPayload
from spanflow.agents.errors import AgentDefinitionError
from spanflow.agents.messages import Message
from spanflow.context import RequestContext
from spanflow.workflows.results import TripwireInfo

__all__ = [
    "PII_PATTERNS",
    "Processor",
    "ProcessorContext",
    "RegexRedactor",
    "TokenLimiter",
    "TripWire",
    "TripwireInfo",
    "check_processors",
    "estimate_tokens",
    "pii_redactor",
]


class TripWire(BaseException):
    """Raised by `ProcessorContext.abort`: the agent call ends with status ``tripwire``.

    A `BaseException` so that ``except Exception`` in user code and in the loop lets it pass.
    """

    def __init__(self, info: TripwireInfo) -> None:
        super().__init__(info.reason)
        self.info = info


@dataclass(slots=True, eq=False)
class ProcessorContext:
    """What a processor hook is given besides the data: the call, and a way to stop it."""

    processor: str
    """The processor's name (``processorId`` of the tripwire)."""
    agent_id: str
    run_id: str
    request_context: RequestContext
    state: dict[str, Any] = field(default_factory=dict)
    """This processor's own scratch space for this call (kept across its hook calls)."""

    def abort(self, reason: str, *, metadata: Any = None, retry: bool = False) -> NoReturn:
        """Stop the call: it ends with status ``tripwire`` and this `reason`.

        Raises:
            TripWire: always (let it propagate).
        """
        raise TripWire(TripwireInfo(str(reason), self.processor, retry, metadata))


class Processor:
    """Base class of processors: every hook passes its data on unchanged.

    Args:
        name: The processor's name in tripwires, errors and spans; default: the class name.
    """

    name: str

    def __init__(self, name: str | None = None) -> None:
        self.name = name or type(self).__name__

    async def process_input(self, messages: list[Message], ctx: ProcessorContext) -> list[Message]:
        """Rewrite (or check) the messages going to the model."""
        return messages

    async def process_output(self, text: str, ctx: ProcessorContext) -> str:
        """Rewrite (or check) one step's complete answer text."""
        return text

    def process_chunk(self, chunk: AgentChunk, ctx: ProcessorContext) -> AgentChunk | None:
        """Rewrite, check or drop (``None``) one chunk before the stream gets it."""
        return chunk

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


def check_processors(agent_id: str, kind: str, processors: object) -> tuple[Any, ...]:
    """The processors of `kind` (``input``/``output``) as a tuple, each checked.

    Raises:
        AgentDefinitionError: Not a list, an item without a name or without the hook its kind
            needs, or two with one name.
    """
    if isinstance(processors, str | bytes) or not isinstance(processors, Sequence):
        raise AgentDefinitionError(
            f"agent {agent_id!r}: {kind}_processors must be a list of processors, "
            f"got {type(processors).__name__}"
        )
    hooks = ("process_input",) if kind == "input" else ("process_output", "process_chunk")
    names: set[str] = set()
    for processor in processors:
        name = getattr(processor, "name", None)
        if not isinstance(name, str) or not name:
            raise AgentDefinitionError(
                f"agent {agent_id!r}: {kind} processor {processor!r} needs a non-empty "
                f"string 'name'"
            )
        if not any(callable(getattr(processor, hook, None)) for hook in hooks):
            raise AgentDefinitionError(
                f"agent {agent_id!r}: {kind} processor {name!r} has none of {', '.join(hooks)}"
            )
        if name in names:
            raise AgentDefinitionError(f"agent {agent_id!r}: two {kind} processors are {name!r}")
        names.add(name)
    return tuple(processors)


# -- RegexRedactor -------------------------------------------------------------------------------

PII_PATTERNS: Mapping[str, str] = {
    "email": r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}",
    "card": r"\b(?:\d[ -]?){12,18}\d\b",
    "phone": r"(?<![\w+])\+?\d{1,3}?[ .-]?\(?\d{2,4}\)?[ .-]?\d{3,4}[ .-]?\d{3,4}\b",
}
"""The PII preset: e-mail addresses, payment card numbers (13 to 19 digits, spaces or dashes
allowed) and phone numbers (international or local, with common separators). Card numbers come
before phone numbers so a card is not half-redacted as a phone number."""


class RegexRedactor(Processor):
    """Replaces every match of its patterns in the input messages and the output.

    Use it as an input processor (the user's and the recalled messages are redacted before the
    model, the memory and the trace see them) and/or as an output processor (each step's text,
    and each ``text-delta`` chunk on its own: a match split across two deltas is caught in the
    step's final text only; the partial objects of ``object`` chunks are redacted string by
    string).

    Args:
        patterns: Regular expressions (strings or compiled), or a mapping of labels to them.
        replacement: What a match becomes; ``{label}`` is replaced by the pattern's label
            (its index for a list), e.g. ``"[{label} redacted]"``.
        name: Default ``"regex-redactor"``.
    """

    def __init__(
        self,
        patterns: Iterable[str | re.Pattern[str]] | Mapping[str, str | re.Pattern[str]],
        replacement: str = "[REDACTED]",
        *,
        name: str = "regex-redactor",
    ) -> None:
        super().__init__(name)
        pairs = (
            list(patterns.items())
            if isinstance(patterns, Mapping)
            else [(str(i), p) for i, p in enumerate(patterns)]
        )
        if not pairs:
            raise AgentDefinitionError(f"RegexRedactor {name!r} needs at least one pattern")
        self.patterns: list[tuple[str, re.Pattern[str]]] = []
        for label, pattern in pairs:
            try:
                compiled = pattern if isinstance(pattern, re.Pattern) else re.compile(pattern)
            except re.error as exc:
                raise AgentDefinitionError(
                    f"RegexRedactor {name!r}: pattern {label!r} is not a valid regular "
                    f"expression: {exc}"
                ) from None
            self.patterns.append((label, compiled))
        self.replacement = replacement

    def redact(self, text: str) -> str:
        """`text` with every match replaced."""
        for label, pattern in self.patterns:
            text = pattern.sub(self.replacement.replace("{label}", label), text)
        return text

    async def process_input(self, messages: list[Message], ctx: ProcessorContext) -> list[Message]:
        return [_redacted_message(m, self.redact) for m in messages]

    async def process_output(self, text: str, ctx: ProcessorContext) -> str:
        return self.redact(text)

    def process_chunk(self, chunk: AgentChunk, ctx: ProcessorContext) -> AgentChunk | None:
        payload = chunk.payload
        if isinstance(payload, TextDeltaPayload):
            return replace(chunk, payload=TextDeltaPayload(payload.id, self.redact(payload.text)))
        if isinstance(payload, ObjectPayload):  # partial structured answers, string by string
            return replace(chunk, payload=ObjectPayload(self._redact_value(payload.object)))
        return chunk

    def _redact_value(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.redact(value)
        if isinstance(value, dict):
            return {key: self._redact_value(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self._redact_value(item) for item in value]
        return value


def pii_redactor(replacement: str = "[{label} redacted]", *, name: str = "pii") -> RegexRedactor:
    """A `RegexRedactor` with the `PII_PATTERNS` preset (e-mails, cards, phone numbers)."""
    ordered = {k: PII_PATTERNS[k] for k in ("email", "card", "phone")}
    return RegexRedactor(ordered, replacement, name=name)


def _redacted_message(message: Message, redact: Any) -> Message:
    return replace(message, content=redact(message.content))


# -- TokenLimiter --------------------------------------------------------------------------------

_TOKEN = re.compile(r"\w+|[^\w\s]")


def estimate_tokens(text: str) -> int:
    """A model-independent token estimate: words and punctuation marks (no tokenizer needed;
    real tokenizers count somewhat more for long or rare words)."""
    return len(_TOKEN.findall(text))


def _cut(text: str, tokens: int) -> str:
    """The start of `text` holding its first `tokens` estimated tokens."""
    if tokens <= 0:
        return ""
    for count, match in enumerate(_TOKEN.finditer(text), start=1):
        if count == tokens:
            return text[: match.end()]
    return text


class TokenLimiter(Processor):
    """Keeps a call within `max_tokens` (estimated with `estimate_tokens`).

    As an output processor it counts the answer's text over the whole call: with
    ``strategy="abort"`` the call trips once the answer goes past the limit; with
    ``"truncate"`` the text deltas past it are dropped and each step's text is cut at it. As an
    input processor it bounds the messages going in: ``"abort"`` trips when they are over the
    limit, ``"truncate"`` drops the oldest ones (always keeping the last) until they fit.

    Args:
        max_tokens: The limit (at least 1).
        strategy: ``"abort"`` (default) or ``"truncate"``.
        name: Default ``"token-limiter"``.
    """

    def __init__(
        self,
        max_tokens: int,
        strategy: Literal["abort", "truncate"] = "abort",
        *,
        name: str = "token-limiter",
    ) -> None:
        super().__init__(name)
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
            raise AgentDefinitionError(
                f"TokenLimiter {name!r}: max_tokens must be an int >= 1, got {max_tokens!r}"
            )
        if strategy not in ("abort", "truncate"):
            raise AgentDefinitionError(
                f"TokenLimiter {name!r}: strategy must be 'abort' or 'truncate', got {strategy!r}"
            )
        self.max_tokens = max_tokens
        self.strategy = strategy

    async def process_input(self, messages: list[Message], ctx: ProcessorContext) -> list[Message]:
        total = sum(estimate_tokens(m.content) for m in messages)
        if total <= self.max_tokens:
            return messages
        if self.strategy == "abort":
            ctx.abort(
                f"the input is about {total} tokens, over the limit of {self.max_tokens}",
                metadata={"tokens": total, "maxTokens": self.max_tokens},
            )
        kept = list(messages)
        while len(kept) > 1 and total > self.max_tokens:
            total -= estimate_tokens(kept.pop(0).content)
        return kept

    def process_chunk(self, chunk: AgentChunk, ctx: ProcessorContext) -> AgentChunk | None:
        payload = chunk.payload
        if not isinstance(payload, TextDeltaPayload):
            return chunk
        used = int(ctx.state.get("tokens", 0))
        total = used + estimate_tokens(payload.text)
        ctx.state["tokens"] = total
        if total <= self.max_tokens:
            return chunk
        if self.strategy == "abort":
            ctx.abort(
                f"the answer went over the limit of {self.max_tokens} tokens",
                metadata={"maxTokens": self.max_tokens},
            )
        room = self.max_tokens - used
        if room <= 0:
            return None
        return replace(chunk, payload=TextDeltaPayload(payload.id, _cut(payload.text, room)))

    async def process_output(self, text: str, ctx: ProcessorContext) -> str:
        used = int(ctx.state.get("output_tokens", 0))
        room = self.max_tokens - used
        kept = text if estimate_tokens(text) <= room else _cut(text, room)
        ctx.state["output_tokens"] = used + estimate_tokens(kept)
        if self.strategy == "abort" and kept != text:
            ctx.abort(
                f"the answer went over the limit of {self.max_tokens} tokens",
                metadata={"maxTokens": self.max_tokens},
            )
        return kept
