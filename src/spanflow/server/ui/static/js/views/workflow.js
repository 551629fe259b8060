// #/workflows/<id> : the workflow's runs (filtered, paged, newest first) and a form to start one.

import { getJson, request, seg } from "../api.js";
import { errorBox, fill, h } from "../dom.js";
import { buildForm, parseSchema } from "../forms.js";
import { runHref, runsTable, STATUSES } from "../runs.js";

const PER_PAGE = 20;

export async function workflowView(root, { workflowId }, signal) {
  const info = await getJson(`/workflows/${seg(workflowId)}`, {}, signal);
  const state = { page: 0, status: "", resource: "" };

  const statusFilter = h("select", { id: "status-filter", "aria-label": "status" },
    h("option", { value: "" }, "any status"), STATUSES.map((s) => h("option", { value: s }, s)));
  const resourceFilter = h("input", { id: "resource-filter", type: "search", placeholder: "resource id", "aria-label": "resource id" });
  const prev = h("button", { type: "button", id: "prev-page" }, "← newer");
  const next = h("button", { type: "button", id: "next-page" }, "older →");
  const pageInfo = h("span", { class: "muted page-info" });
  const tableBox = h("div", { class: "table-box" });

  async function load() {
    fill(tableBox, h("p", { class: "muted" }, "Loading…"));
    try {
      const listing = await getJson(`/workflows/${seg(workflowId)}/runs`, {
        page: state.page, perPage: PER_PAGE, status: state.status, resourceId: state.resource,
      }, signal);
      fill(tableBox, runsTable(workflowId, listing.runs, { id: "runs-table" }));
      const first = state.page * PER_PAGE;
      pageInfo.textContent = listing.total ? `${first + 1}–${first + listing.runs.length} of ${listing.total}` : "0 runs";
      prev.disabled = state.page === 0;
      next.disabled = first + listing.runs.length >= listing.total;
    } catch (error) {
      if (signal.aborted) return;
      fill(tableBox, errorBox(error.message));
    }
  }
  statusFilter.addEventListener("change", () => { state.status = statusFilter.value; state.page = 0; load(); });
  let typing;
  resourceFilter.addEventListener("input", () => {
    clearTimeout(typing);
    typing = setTimeout(() => { state.resource = resourceFilter.value.trim(); state.page = 0; load(); }, 250);
  });
  prev.addEventListener("click", () => { state.page = Math.max(0, state.page - 1); load(); });
  next.addEventListener("click", () => { state.page += 1; load(); });

  fill(root,
    h("section", { class: "head" }, h("h2", {}, workflowId), info.description ? h("p", {}, info.description) : null),
    h("div", { class: "columns" },
      h("section", { class: "runs-pane" },
        h("h3", {}, "Runs"),
        h("div", { class: "filters" }, statusFilter, resourceFilter, h("button", { type: "button", class: "link", onclick: load }, "refresh")),
        tableBox,
        h("div", { class: "pager" }, prev, pageInfo, next)),
      h("section", { class: "start-pane" }, h("h3", {}, "Start a run"), startForm(workflowId, info))));
  await load();
  return [{ text: workflowId }];
}

function startForm(workflowId, info) {
  const form = buildForm(parseSchema(info.inputSchema), "start");
  const resource = h("input", { id: "start-resource", type: "text", placeholder: "optional" });
  const metadata = h("textarea", { id: "start-metadata", rows: 3, class: "json", spellcheck: "false", placeholder: '{"user": {"id": "u-42"}}' });
  const tags = h("input", { id: "start-tags", type: "text", placeholder: "vip, web (comma-separated)" });
  const context = h("textarea", { id: "start-context", rows: 2, class: "json", spellcheck: "false", placeholder: "{} (optional)" });
  const message = h("div", { class: "form-message", role: "status" });
  const submit = h("button", { type: "submit", id: "start-submit", class: "primary" }, "Start run");

  const element = h("form", { id: "start-form", novalidate: true },
    h("fieldset", { class: "input" }, h("legend", {}, "Input"), form.element),
    h("fieldset", { class: "options" }, h("legend", {}, "Options"),
      h("div", { class: "field" }, h("label", { for: "start-resource" }, "Resource id"), resource),
      h("div", { class: "field" }, h("label", { for: "start-metadata" }, "Metadata (JSON object, on the trace)"), metadata),
      h("div", { class: "field" }, h("label", { for: "start-tags" }, "Tags"), tags),
      h("div", { class: "field" }, h("label", { for: "start-context" }, "Request context (JSON object)"), context)),
    submit, message);

  element.addEventListener("submit", async (event) => {
    event.preventDefault();
    fill(message);
    const read = form.read();
    const problems = read.ok ? [] : read.errors;
    const meta = jsonObject(metadata.value, "metadata", problems);
    const ctx = jsonObject(context.value, "request context", problems);
    if (problems.length) {
      fill(message, errorBox("Fix these first: " + problems.join("; ")));
      return;
    }
    const tagList = tags.value.split(",").map((t) => t.trim()).filter(Boolean);
    const resourceId = resource.value.trim() || undefined;
    const tracingOptions = {};
    if (meta) tracingOptions.metadata = meta;
    if (tagList.length) tracingOptions.tags = tagList;
    submit.disabled = true;
    try {
      // The stream route creates the run and starts it in one request (a refused body leaves no
      // run behind); once it answers, the run is executing: the run page follows it with
      // observe, so this stream is let go at once (that never cancels the run).
      const runId = newRunId();
      const body = { inputData: read.value, resourceId };
      if (Object.keys(tracingOptions).length) body.tracingOptions = tracingOptions;
      if (ctx) body.requestContext = ctx;
      const response = await request("POST", `/workflows/${seg(workflowId)}/stream`, { query: { runId }, body });
      response.body.cancel().catch(() => {});
      location.hash = runHref(workflowId, runId);
    } catch (error) {
      fill(message, errorBox(error.message));
    } finally {
      submit.disabled = false;
    }
  });
  return element;
}

function newRunId() {
  if (crypto.randomUUID) return crypto.randomUUID(); // secure contexts only (https, localhost)
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

function jsonObject(text, name, problems) {
  if (!text.trim()) return null;
  try {
    const value = JSON.parse(text);
    if (typeof value !== "object" || value === null || Array.isArray(value)) throw new Error("not an object");
    return value;
  } catch (error) {
    problems.push(`${name}: must be a JSON object (${error.message})`);
    return null;
  }
}
