// A run as the page shows it (`RunModel`: one bar per step execution, grouped under nested
// workflows and foreach steps), built from the run's stored state and then from its events,
// and drawn as a timeline on a time axis (`renderTimeline`) with each step's details.

import { duration, fill, h, pretty, when } from "./dom.js";

const LIVE = new Set(["pending", "queued", "running", "waiting"]);

/** Whether a run (or step) with this status may still change. */
export function isLive(status) {
  return LIVE.has(status);
}

function parentOf(id) {
  const cut = id.lastIndexOf(".");
  return cut > 0 ? id.slice(0, cut) : null;
}

export class RunModel {
  constructor() {
    this.bars = new Map(); // step id (dotted for nested steps) -> bar
    this.status = null;
    this.input = undefined;
    this.result = undefined;
    this.error = undefined;
  }

  bar(id) {
    let bar = this.bars.get(id);
    if (!bar) {
      bar = { id, parent: parentOf(id), status: "pending", iterations: new Map(), writes: [], runs: 0 };
      if (bar.parent && !this.bars.has(bar.parent)) this.bar(bar.parent);
      this.bars.set(id, bar);
    }
    return bar;
  }

  /** The run's state (GET .../runs/:runId): its status, input and top-level steps. */
  fromState(state) {
    this.status = state.status;
    if ("payload" in state) this.input = state.payload;
    if ("result" in state) this.result = state.result;
    if (state.error) this.error = state.error;
    for (const [id, step] of Object.entries(state.steps || {})) {
      const bar = this.bar(id);
      Object.assign(bar, {
        status: step.status,
        startedAt: step.startedAt ?? bar.startedAt,
        endedAt: step.endedAt ?? bar.endedAt,
        suspendedAt: step.suspendedAt ?? bar.suspendedAt,
        resumedAt: step.resumedAt ?? bar.resumedAt,
        input: step.payload,
      });
      if ("output" in step) bar.output = step.output;
      if (step.error) bar.error = step.error;
      if (step.suspendPayload !== undefined) bar.suspendPayload = step.suspendPayload;
    }
  }

  /** One event of the run's stream (a workflow stream record). */
  apply(event) {
    const p = event.payload || {};
    switch (event.type) {
      case "workflow-start":
        this.status = "running";
        break;
      case "workflow-step-start": {
        const bar = this.bar(p.id);
        bar.status = "running";
        bar.startedAt = bar.startedAt ?? p.startedAt;
        if (p.resumedAt) bar.resumedAt = p.resumedAt;
        bar.endedAt = undefined;
        bar.input = p.payload;
        if (!p.resumedAt) bar.runs += 1; // a resumed execution goes on in the same bar
        break;
      }
      case "workflow-step-waiting": {
        const bar = this.bar(p.id);
        bar.status = "waiting";
        bar.startedAt = bar.startedAt ?? p.startedAt;
        this.status = "waiting";
        break;
      }
      case "workflow-step-result": {
        const bar = this.bar(p.id);
        bar.status = p.status;
        bar.startedAt = bar.startedAt ?? p.startedAt;
        bar.endedAt = p.endedAt;
        if ("output" in p) bar.output = p.output;
        if (p.error) bar.error = p.error;
        if (this.status === "waiting") this.status = "running";
        break;
      }
      case "workflow-step-suspended": {
        const bar = this.bar(p.id);
        bar.status = "suspended";
        bar.startedAt = bar.startedAt ?? p.startedAt;
        bar.suspendedAt = p.suspendedAt;
        bar.suspendPayload = p.suspendPayload;
        break;
      }
      case "workflow-step-progress": {
        const bar = this.bar(p.id);
        bar.total = p.totalCount;
        bar.completed = p.completedCount;
        bar.iterations.set(p.currentIndex, { status: p.iterationStatus, output: p.iterationOutput });
        break;
      }
      case "workflow-step-output": {
        const bar = this.bars.get(p.stepName) || [...this.bars.values()].reverse().find((b) => b.id.endsWith(p.stepName));
        if (bar) addWrite(bar, p.output);
        break;
      }
      case "workflow-canceled":
        this.status = "canceled";
        break;
      case "workflow-finish":
        this.status = p.workflowStatus;
        if ("finalWorkflowResult" in p) this.result = p.finalWorkflowResult;
        if (p.error) this.error = p.error;
        break;
      default:
        break;
    }
  }

  /** The steps suspended now: [{id, payload}] (dotted ids for nested steps). */
  suspended() {
    return [...this.bars.values()]
      .filter((bar) => bar.status === "suspended" && ![...this.bars.values()].some((b) => b.parent === bar.id && b.status === "suspended"))
      .map((bar) => ({ id: bar.id, payload: bar.suspendPayload }));
  }

  /** [start, end] of the run in epoch ms (end: now while it is live). */
  span(now = Date.now()) {
    let start = Infinity;
    let end = -Infinity;
    for (const bar of this.bars.values()) {
      if (bar.startedAt) start = Math.min(start, bar.startedAt);
      for (const t of [bar.endedAt, bar.suspendedAt, bar.resumedAt, bar.startedAt]) if (t) end = Math.max(end, t);
      if (isLive(bar.status) && bar.startedAt) end = Math.max(end, now);
    }
    if (start === Infinity) return null;
    return [start, Math.max(end, start + 1)];
  }
}

// What a step wrote while running; an agent step's chunks are joined into its text.
function addWrite(bar, output) {
  const chunk = output && typeof output === "object" && typeof output.type === "string" ? output : null;
  if (!chunk) {
    bar.writes.push(output);
    return;
  }
  if (chunk.type === "text-delta") {
    const last = bar.writes[bar.writes.length - 1];
    const text = (chunk.payload && chunk.payload.text) || "";
    if (last && last.agentText !== undefined) last.agentText += text;
    else bar.writes.push({ agentText: text });
  } else if (chunk.type === "tool-call" || chunk.type === "tool-result") {
    const p = chunk.payload || {};
    bar.writes.push({ [chunk.type]: p.toolName, ...(chunk.type === "tool-call" ? { args: p.args } : { result: p.result }) });
  }
}

function barEnd(bar, now) {
  if (bar.endedAt) return bar.endedAt;
  if (bar.status === "suspended") return bar.suspendedAt || bar.startedAt;
  return isLive(bar.status) ? now : bar.startedAt;
}

// The stretches of the run where no step was active (a run suspended for an hour, say): when
// they take most of the run, the axis shows each one as a short break, so the steps stay
// readable. A step is active from its start to its end, minus its own suspension.
function idleGaps(model, start, end, now) {
  const spans = [];
  for (const bar of model.bars.values()) {
    if (!bar.startedAt) continue;
    const stop = barEnd(bar, now);
    if (bar.suspendedAt && bar.resumedAt && bar.resumedAt > bar.suspendedAt) {
      spans.push([bar.startedAt, bar.suspendedAt], [bar.resumedAt, stop]);
    } else {
      spans.push([bar.startedAt, stop]);
    }
  }
  spans.sort((x, y) => x[0] - y[0]);
  const gaps = [];
  let reach = start;
  for (const [from, to] of spans) {
    if (from > reach) gaps.push([reach, from]);
    reach = Math.max(reach, to);
  }
  const total = end - start;
  return gaps.filter(([from, to]) => to - from > total * 0.2);
}

/** Positions on the axis (percent) for times, with idle gaps shown short when `compress`. */
function timeScale(model, start, end, now, compress) {
  const gaps = compress ? idleGaps(model, start, end, now) : [];
  const idle = gaps.reduce((sum, [from, to]) => sum + (to - from), 0);
  const active = end - start - idle;
  const shown = gaps.length ? Math.max(active * 0.06, 1) : 0;
  const total = active + shown * gaps.length;
  const at = (t) => {
    let x = t - start;
    for (const [from, to] of gaps) {
      if (t >= to) x -= to - from - shown;
      else if (t > from) x -= (t - from) * (1 - shown / (to - from));
    }
    return (x / total) * 100;
  };
  return { at, gaps, active };
}

function tickStep(span, count) {
  const steps = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 15000, 30000, 60000, 120000, 300000, 600000, 1800000, 3600000, 7200000, 21600000, 86400000];
  return steps.find((s) => s >= span / count) || span / count;
}

/** Axis labels: real elapsed time, spaced on screen; a break mark over each idle gap. */
function axisMarks(scale, start, end) {
  const step = tickStep(scale.active || end - start, 6);
  const segments = [];
  let from = start;
  for (const [gapFrom, gapTo] of scale.gaps) {
    segments.push([from, gapFrom]);
    from = gapTo;
  }
  segments.push([from, end]);
  const marks = [];
  let last = -Infinity;
  segments.forEach(([segFrom, segTo], index) => {
    // After a break the ticks count from the break's end ("+50 ms"), its first one naming
    // the elapsed time there; there are at most about active / step of them.
    const origin = index ? segFrom : start;
    for (let t = 0; origin + t <= segTo; t += step) {
      const x = scale.at(origin + t);
      const nearBreak = scale.gaps.some(([from, to]) => x > scale.at(from) - 8 && x < scale.at(to) + (t ? 2 : 0));
      if (x - last < 9 || x > 97 || nearBreak) continue;
      last = x;
      const text = !index ? duration(t) : t ? "+" + duration(t) : duration(origin - start);
      marks.push(h("span", { class: "tick", style: { left: x.toFixed(3) + "%" } }, text));
    }
  });
  for (const [gapFrom, gapTo] of scale.gaps) {
    const x = scale.at(gapFrom);
    marks.push(h("span", {
      class: "gap-mark",
      style: { left: x.toFixed(3) + "%", width: (scale.at(gapTo) - x).toFixed(3) + "%" },
      title: "no step active for " + duration(gapTo - gapFrom),
    }, "⋯ " + duration(gapTo - gapFrom)));
  }
  return marks;
}

/**
 * Draw `model` into `container` (#timeline): an axis, then a row per bar (`.bar[data-step-id]`,
 * class `status-<status>`), nested workflows' steps and foreach iterations grouped under their
 * step (`.group[data-step-id]`). With `compress`, idle stretches are drawn short.
 */
export function renderTimeline(container, model, { now = Date.now(), compress = true } = {}) {
  const range = model.span(now);
  if (!range) {
    fill(container, h("p", { class: "muted" }, "No step has started yet."));
    return;
  }
  const [start, end] = range;
  const scale = timeScale(model, start, end, now, compress);
  const pct = (t) => scale.at(t).toFixed(3) + "%";
  const axis = h("div", { class: "row axis" }, h("div", { class: "label" }, "step"),
    h("div", { class: "track" }, axisMarks(scale, start, end)));
  const gapShades = () => scale.gaps.map(([from, to]) =>
    h("span", { class: "gap-shade", style: { left: pct(from), width: (scale.at(to) - scale.at(from)).toFixed(3) + "%" } }));

  const rowOf = (bar, depth) => {
    const from = bar.startedAt || start;
    const stop = barEnd(bar, now);
    const leftPct = scale.at(from);
    const widthPct = Math.max(scale.at(stop) - leftPct, 0.4);
    const place = widthPct > 14 ? "in" : leftPct + widthPct > 86 ? "before" : "after";
    const took = bar.endedAt && bar.startedAt ? bar.endedAt - bar.startedAt : isLive(bar.status) && bar.startedAt ? now - bar.startedAt : null;
    const segments = [];
    if (bar.suspendedAt && bar.resumedAt && bar.resumedAt > bar.suspendedAt && bar.startedAt) {
      const x0 = scale.at(bar.suspendedAt) - leftPct;
      const x1 = scale.at(bar.resumedAt) - leftPct;
      segments.push(h("span", {
        class: "paused",
        title: "suspended " + duration(bar.resumedAt - bar.suspendedAt),
        style: { left: ((x0 / widthPct) * 100).toFixed(3) + "%", width: (((x1 - x0) / widthPct) * 100).toFixed(3) + "%" },
      }));
    }
    const name = bar.parent ? bar.id.slice(bar.parent.length + 1) : bar.id;
    const extra = bar.total !== undefined ? ` (${bar.completed ?? 0}/${bar.total})` : bar.runs > 1 ? ` ×${bar.runs}` : "";
    return h("div", { class: "row", style: { "--depth": depth } },
      h("div", { class: "label", title: bar.id }, name + extra),
      h("div", { class: "track" }, gapShades(),
        h("div", {
          class: `bar status-${bar.status}`,
          dataset: { stepId: bar.id, status: bar.status },
          style: { left: leftPct.toFixed(3) + "%", width: widthPct.toFixed(3) + "%" },
          title: `${bar.id}: ${bar.status}${took !== null ? ", " + duration(took) : ""}`,
        }, segments, h("span", { class: `dur ${place}` }, took !== null ? duration(took) : bar.status))));
  };

  // A foreach's iterations: one cell each, in index order, across the foreach's bar (their own
  // times are not recorded, only their statuses and outputs).
  const iterationRows = (bar, depth) => {
    if (!bar.iterations.size) return [];
    const count = Math.max(bar.total || 0, ...[...bar.iterations.keys()].map((i) => i + 1));
    const from = scale.at(bar.startedAt || start);
    const width = Math.max(scale.at(barEnd(bar, now)) - from, 0.4);
    const cells = [];
    for (let index = 0; index < count; index++) {
      const it = bar.iterations.get(index);
      const status = it ? it.status : "pending";
      cells.push(h("div", {
        class: `bar iteration status-${status}`,
        dataset: { stepId: `${bar.id}[${index}]`, iteration: String(index), status },
        style: { left: (from + (width * index) / count).toFixed(3) + "%", width: `calc(${(width / count).toFixed(3)}% - 1px)` },
        title: `${bar.id} [${index}]: ${status}`,
      }));
    }
    return h("div", { class: "row iteration-row", style: { "--depth": depth } },
      h("div", { class: "label" }, `${count} iterations`), h("div", { class: "track" }, cells));
  };

  const tree = (parent, depth) => [...model.bars.values()].filter((bar) => bar.parent === parent).map((bar) => {
    const children = tree(bar.id, depth + 1);
    if (!children.length && !bar.iterations.size) return rowOf(bar, depth);
    return h("div", { class: "group", dataset: { stepId: bar.id } }, rowOf(bar, depth), children, iterationRows(bar, depth + 1));
  });

  fill(container, axis, tree(null, 0),
    h("p", { class: "muted axis-note" }, `started ${when(start)} · ${duration(end - start)} in all` +
      (scale.gaps.length ? ` · idle stretches drawn short (${scale.gaps.map(([a, b]) => duration(b - a)).join(", ")})` : "")));
}

/** The bars parent first, each followed by its nested steps (the timeline's order). */
function inTreeOrder(model) {
  const out = [];
  const visit = (parent) => {
    for (const bar of model.bars.values()) {
      if (bar.parent !== parent) continue;
      out.push(bar);
      visit(bar.id);
    }
  };
  visit(null);
  return out;
}

/** Each step's input, output or error, writes and suspend payload (open ones stay open). */
export function renderDetails(container, model) {
  const open = new Set([...container.querySelectorAll("details[open]")].map((d) => d.dataset.stepId));
  fill(container, inTreeOrder(model).map((bar) => {
    const took = bar.endedAt && bar.startedAt ? duration(bar.endedAt - bar.startedAt) : "";
    return h("details", { class: `step-detail status-${bar.status}`, dataset: { stepId: bar.id }, open: open.has(bar.id) },
      h("summary", {}, h("span", { class: `dot status-${bar.status}` }), h("code", {}, bar.id), " ", h("span", { class: "muted" }, bar.status + (took ? " · " + took : ""))),
      section("Input", bar.input),
      bar.error ? section("Error", bar.error.message ?? bar.error, "error", bar.error.stack) : null,
      "output" in bar ? section("Output", bar.output, "output") : null,
      bar.writes.length ? section("Written while running", bar.writes.map((w) => (w && w.agentText !== undefined ? w.agentText : pretty(w))).join("\n")) : null,
      bar.suspendPayload !== undefined ? section("Suspend payload", bar.suspendPayload) : null,
      bar.iterations.size ? section("Iterations", Object.fromEntries([...bar.iterations].map(([i, it]) => [i, it]))) : null);
  }));
}

function section(title, value, kind = "", stack = undefined) {
  return h("div", { class: `detail ${kind}` },
    h("h4", {}, title),
    h("pre", { class: kind === "error" ? "error-text" : "" }, pretty(value)),
    stack ? h("details", { class: "stack" }, h("summary", {}, "stack"), h("pre", {}, stack)) : null);
}
