// #/agents/<id> : a chat with an agent. Each answer streams in (POST .../stream, Server-Sent
// Events): its text as it is written, its tool calls and their results as they happen. The
// conversation so far is sent with every message (spanflow agents keep no history).

import { getJson, jaegerUi, request, seg, sseChunks } from "../api.js";
import { errorBox, fill, h, pretty } from "../dom.js";

export async function agentView(root, { agentId }, signal) {
  const info = await getJson(`/agents/${seg(agentId)}`, {}, signal);
  const history = [];
  const output = h("div", { id: "agent-output", class: "chat", "aria-live": "polite" });
  const message = h("textarea", { id: "agent-message", rows: 3, placeholder: "Message… (Ctrl+Enter sends)" });
  const send = h("button", { type: "submit", id: "agent-send", class: "primary" }, "Send");
  const form = h("form", { class: "chat-form" }, message, send);

  const tools = Object.values(info.tools || {});
  fill(root,
    h("section", { class: "head" },
      h("h2", {}, info.name || agentId),
      info.description ? h("p", {}, info.description) : null,
      h("p", { class: "muted" }, [info.provider, info.modelId].filter(Boolean).join(" · "),
        tools.length ? " · tools: " + tools.map((t) => t.id).join(", ") : ""),
      info.instructions ? h("details", {}, h("summary", {}, "Instructions"), h("pre", {}, info.instructions)) : null),
    h("section", {}, output, form));

  message.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) form.requestSubmit();
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = message.value.trim();
    if (!text) return;
    message.value = "";
    send.disabled = true;
    output.append(h("div", { class: "turn user" }, h("div", { class: "who" }, "you"), h("div", { class: "text" }, text)));
    history.push({ role: "user", content: text });
    const turn = h("div", { class: "turn assistant" }, h("div", { class: "who" }, info.name || agentId));
    output.append(turn);
    try {
      const answer = await stream(agentId, history, turn, signal);
      history.push({ role: "assistant", content: answer });
    } catch (error) {
      if (!signal.aborted) turn.append(errorBox(error.message));
      history.pop();
    } finally {
      send.disabled = false;
      message.focus();
    }
  });
  return [{ text: "agent " + (info.name || agentId) }];
}

async function stream(agentId, messages, turn, signal) {
  const response = await request("POST", `/agents/${seg(agentId)}/stream`, { body: { messages }, signal });
  traceLine(turn, response.headers.get("traceparent"));
  let text = null;
  let answer = "";
  for await (const chunk of sseChunks(response)) {
    const p = chunk.payload || {};
    if (chunk.type === "text-delta") {
      if (!text) {
        text = h("div", { class: "text" });
        turn.append(text);
      }
      text.textContent += p.text ?? "";
      answer += p.text ?? "";
    } else if (chunk.type === "tool-call") {
      text = null;
      turn.append(h("div", { class: "tool-call", dataset: { toolCallId: p.toolCallId || "" } },
        h("span", { class: "tool-label" }, "tool call "), h("code", {}, p.toolName), h("pre", {}, pretty(p.args))));
    } else if (chunk.type === "tool-result") {
      text = null;
      turn.append(h("div", { class: "tool-result", dataset: { toolCallId: p.toolCallId || "" } },
        h("span", { class: "tool-label" }, "tool result "), h("code", {}, p.toolName), h("pre", {}, pretty(p.result))));
    } else if (chunk.type === "error") {
      turn.append(errorBox(typeof p.error === "string" ? p.error : pretty(p.error ?? p)));
    } else if (chunk.type === "finish") {
      const usage = p.usage || (p.output && p.output.usage);
      if (usage) turn.append(h("div", { class: "muted usage" }, `${usage.totalTokens ?? 0} tokens`));
    }
  }
  return answer;
}

function traceLine(turn, traceparent) {
  const parts = (traceparent || "").split("-");
  if (parts.length !== 4) return;
  turn.append(h("div", { class: "muted trace-line" }, "trace ", h("code", {}, parts[1]), " ",
    jaegerUi ? h("a", { href: `${jaegerUi}/trace/${parts[1]}`, target: "_blank", rel: "noopener noreferrer" }, "Jaeger ↗") : null));
}
