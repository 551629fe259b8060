// #/ : the workflows (each with its latest runs) and the agents.

import { getJson, seg } from "../api.js";
import { fill, h, link } from "../dom.js";
import { runsTable } from "../runs.js";

export async function homeView(root, _params, signal) {
  const [workflows, agents] = await Promise.all([getJson("/workflows", {}, signal), getJson("/agents", {}, signal)]);
  const workflowList = h("div", { class: "cards" });
  const agentList = h("div", { class: "cards" });
  fill(root,
    h("section", {}, h("h2", {}, "Workflows"), workflowList),
    h("section", {}, h("h2", {}, "Agents"), agentList));

  const ids = Object.keys(workflows);
  if (!ids.length) workflowList.append(h("p", { class: "muted" }, "No workflows registered."));
  for (const id of ids) {
    const info = workflows[id];
    const recent = h("div", { class: "recent" }, h("p", { class: "muted" }, "Loading runs…"));
    workflowList.append(h("article", { class: "card workflow-card", dataset: { workflowId: id } },
      h("h3", {}, link(`#/workflows/${seg(id)}`, id)),
      info.description ? h("p", {}, info.description) : null,
      h("p", { class: "muted" }, `${Object.keys(info.allSteps || info.steps || {}).length} steps`),
      recent));
    getJson(`/workflows/${seg(id)}/runs`, { perPage: 5 }, signal).then(
      (listing) => fill(recent, h("h4", {}, `Latest runs (${listing.total} in all)`), runsTable(id, listing.runs, { class: "runs compact" }),
        h("p", {}, link(`#/workflows/${seg(id)}`, "All runs and start a run →"))),
      (error) => fill(recent, h("p", { class: "muted" }, "Runs: " + error.message)));
  }

  const agentIds = Object.keys(agents);
  if (!agentIds.length) agentList.append(h("p", { class: "muted" }, "No agents registered."));
  for (const id of agentIds) {
    const info = agents[id];
    agentList.append(h("article", { class: "card agent-card", dataset: { agentId: id } },
      h("h3", {}, link(`#/agents/${seg(id)}`, info.name || id)),
      info.description ? h("p", {}, info.description) : null,
      h("p", { class: "muted" }, [info.provider, info.modelId].filter(Boolean).join(" · ") || "model not named",
        ` · ${Object.keys(info.tools || {}).length} tool${Object.keys(info.tools || {}).length === 1 ? "" : "s"}`)));
  }
  return [{ text: "Workflows and agents" }];
}
