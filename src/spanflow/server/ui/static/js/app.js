// The run browser's entry point: hash routing to the views, and the token form when the API
// answers 401 (the token is kept for the tab, in sessionStorage).

import { AuthRequired, setToken, token } from "./api.js";
import { errorBox, fill, h, link } from "./dom.js";
import { agentView } from "./views/agent.js";
import { homeView } from "./views/home.js";
import { runView } from "./views/run.js";
import { workflowView } from "./views/workflow.js";

const ROUTES = [
  [/^\/workflows\/([^/]+)\/runs\/([^/]+)$/, runView, ["workflowId", "runId"]],
  [/^\/workflows\/([^/]+)$/, workflowView, ["workflowId"]],
  [/^\/agents\/([^/]+)$/, agentView, ["agentId"]],
  [/^\/?$/, homeView, []],
];

const view = document.getElementById("view");
const crumbs = document.getElementById("crumbs");
const forget = document.getElementById("forget-token");
let current = null; // the AbortController of the view on screen (its fetches and streams)

function match(path) {
  for (const [pattern, render, names] of ROUTES) {
    const found = pattern.exec(path);
    if (found) {
      const params = Object.fromEntries(names.map((name, i) => [name, decodeURIComponent(found[i + 1])]));
      return [render, params];
    }
  }
  return [null, {}];
}

async function route() {
  if (current) current.abort();
  const controller = new AbortController();
  current = controller;
  forget.hidden = !token();
  const path = (location.hash.replace(/^#/, "") || "/").split("?")[0];
  const [render, params] = match(path);
  if (!render) {
    fill(view, errorBox("No page here: " + path), h("p", {}, link("#/", "Back to the workflows")));
    return;
  }
  fill(view, h("p", { class: "muted" }, "Loading…"));
  try {
    const trail = await render(view, params, controller.signal);
    if (!controller.signal.aborted) drawCrumbs(trail || []);
  } catch (error) {
    if (controller.signal.aborted) return;
    if (error instanceof AuthRequired) showTokenForm();
    else fill(view, errorBox(error.message), h("p", {}, link("#/", "Back to the workflows")));
  }
}

function drawCrumbs(trail) {
  fill(crumbs, trail.map((item, i) => [
    i ? h("span", { class: "sep" }, " / ") : null,
    item.href ? link(item.href, item.text) : h("span", {}, item.text),
  ]));
}

function showTokenForm() {
  const input = h("input", { id: "token", type: "password", autocomplete: "off", required: true });
  const form = h("form", { id: "token-form", class: "card token-card" },
    h("h2", {}, "This server wants a token"),
    h("p", {}, "Enter the server's bearer token (SPANFLOW_AUTH_TOKEN). It is kept for this tab only."),
    h("label", { for: "token" }, "Token"), input,
    h("button", { type: "submit", class: "primary" }, "Continue"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    setToken(input.value.trim());
    route();
  });
  fill(crumbs);
  fill(view, form);
  input.focus();
}

forget.addEventListener("click", () => {
  setToken(null);
  route();
});
window.addEventListener("hashchange", route);
route();
