// #/workflows/<id>/runs/<runId> : one run. Its state first, then its events from the stored
// log (observe from offset 0: nested workflows' steps and foreach iterations are only in the
// events), live until the run ends or suspends; a suspended step is answered with a form from
// its resume schema, and the resumed run is followed through its resume-stream.

import { ApiError, getJson, jaegerUi, records, request, seg } from "../api.js";
import { badge, duration, errorBox, fill, h, pretty, short, when } from "../dom.js";
import { buildForm, parseSchema } from "../forms.js";
import { isLive, renderDetails, renderTimeline, RunModel } from "../timeline.js";

const MAX_EVENTS_SHOWN = 500;

export async function runView(root, { workflowId, runId }, signal) {
  const base = `/workflows/${seg(workflowId)}`;
  const [info, state] = await Promise.all([
    getJson(base, {}, signal),
    getJson(`${base}/runs/${seg(runId)}`, {}, signal),
  ]);
  const model = new RunModel();
  model.fromState(state);

  const page = {
    status: h("span", { id: "run-status", class: "badge" }),
    facts: h("dl", { class: "facts" }),
    trace: h("div", { class: "trace" }),
    timeline: h("div", { id: "timeline", class: "timeline" }),
    resume: h("section", { id: "resume-pane", class: "resume-pane", hidden: true }),
    input: h("pre", { id: "run-input" }),
    outcome: h("div", { class: "outcome" }),
    details: h("div", { class: "details" }),
    events: h("ol", { id: "events", class: "events" }),
    live: h("span", { class: "live-note muted" }),
    compress: h("input", { type: "checkbox", id: "compress-idle", checked: true }),
  };
  fill(root,
    h("section", { class: "head" },
      h("h2", {}, h("span", { class: "muted" }, workflowId + " / "), h("code", {}, runId), " ", page.status, " ", page.live),
      page.facts, page.trace),
    page.resume,
    h("section", {}, h("div", { class: "timeline-tools" }, h("h3", {}, "Timeline"),
      h("label", {}, page.compress, " draw idle stretches short")), page.timeline),
    h("div", { class: "columns" },
      h("section", { class: "io" }, h("h3", {}, "Input"), page.input, page.outcome, h("h3", {}, "Steps"), page.details),
      h("section", { class: "events-pane" }, h("h3", {}, "Events"), page.events)));

  let latest = state;
  let frame = 0;
  const draw = () => {
    cancelAnimationFrame(frame);
    frame = requestAnimationFrame(() => {
      drawHead(page, latest, model);
      renderTimeline(page.timeline, model, { compress: page.compress.checked });
      renderDetails(page.details, model);
      drawOutcome(page.outcome, model);
    });
  };
  page.input.textContent = pretty(model.input);
  page.compress.addEventListener("change", () => draw());
  draw();
  const ticker = setInterval(() => { if (isLive(model.status)) draw(); }, 500);
  signal.addEventListener("abort", () => clearInterval(ticker));

  let offset = 0;
  const follow = async (response) => {
    page.live.textContent = "live";
    try {
      for await (const event of records(response)) {
        if (signal.aborted) return;
        offset += 1;
        model.apply(event);
        addEvent(page.events, event);
        draw();
      }
    } finally {
      page.live.textContent = "";
    }
  };
  const refresh = async () => {
    latest = await getJson(`${base}/runs/${seg(runId)}`, {}, signal);
    model.fromState(latest);
    draw();
    showResume(page.resume, info, model, latest, resume);
  };
  const resume = async (step, resumeData) => {
    const response = await request("POST", `${base}/resume-stream`, { query: { runId }, body: { step, resumeData }, signal });
    page.resume.hidden = true;
    await follow(response);
    await refresh();
  };

  (async () => {
    try {
      const response = await request("POST", `${base}/observe`, { query: { runId, offset }, signal });
      await follow(response);
    } catch (error) {
      if (signal.aborted) return;
      if (!(error instanceof ApiError && error.status === 501)) throw error;
      await poll(refresh, model, signal); // a store without an event log: the state, polled
    }
    await refresh();
  })().catch((error) => {
    if (!signal.aborted) page.events.before(errorBox("Following the run failed: " + error.message));
  });

  showResume(page.resume, info, model, latest, resume);
  return [{ text: workflowId, href: `#/workflows/${seg(workflowId)}` }, { text: runId }];
}

async function poll(refresh, model, signal) {
  while (!signal.aborted && isLive(model.status)) {
    await new Promise((resolve) => setTimeout(resolve, 1000));
    await refresh();
  }
}

function drawHead(page, state, model) {
  const status = model.status || state.status;
  page.status.className = `badge status-${status}`;
  page.status.textContent = status;
  page.status.dataset.status = status;
  const range = model.span();
  const facts = [
    ["Created", when(state.createdAt)],
    ["Updated", when(state.updatedAt)],
    ["Duration", range ? duration(range[1] - range[0]) : ""],
    ["Resource", state.resourceId || "—"],
    ["Tags", (state.tags || []).length ? state.tags.map((t) => h("span", { class: "tag" }, t)) : "—"],
    ["Metadata", Object.keys(state.metadata || {}).length ? Object.entries(state.metadata).map(([k, v]) => h("code", { class: "kv" }, `${k}=${short(v, 60)}`)) : "—"],
  ];
  fill(page.facts, facts.map(([term, value]) => [h("dt", {}, term), h("dd", {}, value)]));
  if (page.trace.dataset.traceId !== (state.traceId || "")) drawTrace(page.trace, state);
}

function drawTrace(box, state) {
  box.dataset.traceId = state.traceId || "";
  if (!state.traceId) {
    fill(box, h("span", { class: "muted" }, "Not traced (start the server with --otlp URL or OTEL_EXPORTER_OTLP_ENDPOINT to trace runs)."));
    return;
  }
  const traceparent = `00-${state.traceId}-${state.spanId}-01`;
  const copy = h("button", { type: "button", id: "copy-traceparent", dataset: { traceparent } }, "Copy traceparent");
  copy.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(traceparent);
      copy.textContent = "Copied";
    } catch {
      window.prompt("traceparent", traceparent); // no clipboard outside secure contexts
    }
    setTimeout(() => { copy.textContent = "Copy traceparent"; }, 1500);
  });
  fill(box, h("span", { class: "muted" }, "Trace "), h("code", { class: "trace-id" }, state.traceId), " ",
    jaegerUi ? h("a", { id: "jaeger-link", href: `${jaegerUi}/trace/${state.traceId}`, target: "_blank", rel: "noopener noreferrer" }, "Open in Jaeger ↗") : null,
    " ", copy);
}

function drawOutcome(box, model) {
  if (model.status === "success" && model.result !== undefined) {
    fill(box, h("h3", {}, "Result"), h("pre", { id: "run-result" }, pretty(model.result)));
  } else if (model.error) {
    fill(box, h("h3", {}, "Error"), h("pre", { id: "run-error", class: "error-text" }, pretty(model.error.message ?? model.error)));
  } else {
    fill(box);
  }
}

function addEvent(list, event) {
  const p = event.payload || {};
  const step = p.id || p.stepName;
  let detail = "";
  if (event.type === "workflow-step-result") detail = p.status;
  else if (event.type === "workflow-step-progress") detail = `${p.completedCount}/${p.totalCount} (#${p.currentIndex} ${p.iterationStatus})`;
  else if (event.type === "workflow-step-output") detail = outputSummary(p.output);
  else if (event.type === "workflow-finish") detail = p.workflowStatus;
  list.append(h("li", { class: "event", dataset: { type: event.type } },
    h("span", { class: "etype" }, event.type.replace(/^workflow-/, "")), " ",
    step ? h("code", {}, step) : null, detail ? h("span", { class: "muted" }, " " + detail) : null));
  while (list.children.length > MAX_EVENTS_SHOWN) list.firstElementChild.remove();
  list.scrollTop = list.scrollHeight;
}

function outputSummary(output) {
  if (output && typeof output === "object" && typeof output.type === "string") {
    const p = output.payload || {};
    return output.type + (p.text ? " " + short(p.text, 60) : p.toolName ? " " + p.toolName : "");
  }
  return short(output, 100);
}

function showResume(pane, info, model, state, resume) {
  const suspended = model.status === "suspended" || state.status === "suspended" ? model.suspended() : [];
  if (!suspended.length) {
    pane.hidden = true;
    fill(pane);
    return;
  }
  const current = suspended[0];
  if (pane.dataset.stepId === current.id && !pane.hidden) return; // keep what the person typed
  pane.dataset.stepId = current.id;
  const stepInfo = (info.allSteps || {})[current.id] || (info.steps || {})[current.id] || {};
  const form = buildForm(parseSchema(stepInfo.resumeSchema), "resume");
  const message = h("div", { class: "form-message", role: "status" });
  const submit = h("button", { type: "submit", id: "resume-submit", class: "primary" }, "Resume");
  const picker = suspended.length > 1
    ? h("p", { class: "muted" }, `${suspended.length} steps are suspended: ${suspended.map((s) => s.id).join(", ")}; answering ${current.id} first.`)
    : null;
  const element = h("form", { id: "resume-form", novalidate: true }, form.element, submit, message);
  element.addEventListener("submit", async (event) => {
    event.preventDefault();
    const read = form.read();
    if (!read.ok) {
      fill(message, errorBox("Fix these first: " + read.errors.join("; ")));
      return;
    }
    submit.disabled = true;
    fill(message, h("span", { class: "muted" }, "Resuming…"));
    try {
      await resume(current.id, read.value);
    } catch (error) {
      fill(message, errorBox(error.message));
      submit.disabled = false;
    }
  });
  fill(pane,
    h("h3", {}, "Waiting for an answer: ", h("code", {}, current.id)),
    stepInfo.description ? h("p", {}, stepInfo.description) : null,
    picker,
    h("div", { class: "columns" },
      h("div", {}, h("h4", {}, "Suspend payload"), h("pre", { id: "suspend-payload" }, pretty(current.payload))),
      h("div", {}, h("h4", {}, "Answer"), element)));
  pane.hidden = false;
}
