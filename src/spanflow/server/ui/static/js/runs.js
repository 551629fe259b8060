// What the lists show of a run (its listing item: the stored snapshot and the run's columns).

import { badge, duration, h, link, short, when } from "./dom.js";
import { seg } from "./api.js";
import { isLive } from "./timeline.js";

export const STATUSES = ["pending", "queued", "running", "waiting", "suspended", "success", "failed", "canceled", "tripwire"];

export function runHref(workflowId, runId) {
  return `#/workflows/${seg(workflowId)}/runs/${seg(runId)}`;
}

/** [started (ms), duration (ms) or null] of a listed run, from its steps' times. */
export function runTimes(run, now = Date.now()) {
  const snapshot = run.snapshot || {};
  const steps = Object.values((snapshot.frame && snapshot.frame.steps) || {});
  const starts = steps.map((s) => s.startedAt).filter(Boolean);
  const started = starts.length ? Math.min(...starts) : null;
  if (started === null) return [null, null];
  const status = snapshot.status;
  const end = isLive(status) ? now : Date.parse(run.updatedAt);
  return [started, end - started];
}

function metadataText(metadata) {
  const entries = Object.entries(metadata || {});
  return entries.map(([key, value]) => `${key}=${typeof value === "string" ? value : JSON.stringify(value)}`).join(", ");
}

/** A row of the runs table: `tr.run-row[data-run-id]` with `td.status`. */
export function runRow(workflowId, run) {
  const status = (run.snapshot && run.snapshot.status) || "unknown";
  const [started, took] = runTimes(run);
  return h("tr", { class: "run-row", dataset: { runId: run.runId, status } },
    h("td", { class: "run-id" }, link(runHref(workflowId, run.runId), run.runId)),
    h("td", { class: "status" }, badge(status)),
    h("td", { class: "started", title: run.createdAt }, started ? when(started) : h("span", { class: "muted" }, "created " + when(run.createdAt))),
    h("td", { class: "duration num" }, took !== null ? duration(took) : ""),
    h("td", { class: "resource" }, run.resourceId || ""),
    h("td", { class: "metadata", title: metadataText(run.metadata) }, short(metadataText(run.metadata), 60)),
    h("td", { class: "tags" }, (run.tags || []).map((tag) => h("span", { class: "tag" }, tag))));
}

export function runsTable(workflowId, runs, attrs = {}) {
  return h("table", { class: "runs", ...attrs },
    h("thead", {}, h("tr", {}, ["Run", "Status", "Started", "Duration", "Resource", "Metadata", "Tags"].map((t) => h("th", {}, t)))),
    h("tbody", {}, runs.length ? runs.map((run) => runRow(workflowId, run)) : h("tr", { class: "empty" }, h("td", { colspan: 7, class: "muted" }, "No runs."))));
}
