// Mastra's own HTTP server (@mastra/hono on @hono/node-server) serving the server scenario's
// workflow, for the load client of bench/scenarios/server.py.
//
// Usage: node server.mjs '{"endpoint": "http://127.0.0.1:PORT/v1/traces" | null}'
// Prints `READY http://127.0.0.1:PORT` once it listens on a free loopback port, then serves
// until stdin closes. The workflow is scenario 3's: three steps `{v} -> {v+1}` with zod schemas,
// id "short", under Mastra's default prefix `/api`.
//
// With an endpoint, Mastra's observability pipeline exports through @mastra/otel-exporter over
// OTLP/HTTP (protobuf) to the bench's receiver, as bench.mjs's traced variant does. Two routes of
// our own, outside `/api`, let the client put the export inside its timing and check delivery:
// `POST /bench/flush` awaits the exporter's flush and answers `{"ended": N}`, N the spans the
// pipeline handed to its exporters so far (a second, counting exporter sees the same events as
// the OTel one). No auth, no storage: Mastra keeps runs in memory without one.
import { serve } from "@hono/node-server";
import { Mastra } from "@mastra/core/mastra";
import { createStep, createWorkflow } from "@mastra/core/workflows";
import { MastraServer } from "@mastra/hono";
import { Observability } from "@mastra/observability";
import { OtelExporter } from "@mastra/otel-exporter";
import { Hono } from "hono";
import { z } from "zod";

const config = JSON.parse(process.argv[2] ?? "{}");
const ENDPOINT = config.endpoint ?? null;

const Value = z.object({ v: z.number() });

function chain(id, length) {
  let workflow = createWorkflow({ id, inputSchema: Value, outputSchema: Value });
  for (let i = 0; i < length; i++) {
    workflow = workflow.then(
      createStep({
        id: `s${i}`,
        inputSchema: Value,
        outputSchema: Value,
        execute: async ({ inputData }) => ({ v: inputData.v + 1 }),
      }),
    );
  }
  workflow.commit();
  return workflow;
}

// Counts the spans Mastra's pipeline ended and handed to its exporters.
const counter = {
  name: "bench-counter",
  ended: 0,
  async exportTracingEvent(event) {
    if (event.type === "span_ended") this.ended++;
  },
  async flush() {},
  async shutdown() {},
};

function setup() {
  const workflows = { short: chain("short", 3) };
  if (ENDPOINT === null) {
    return { mastra: new Mastra({ workflows, logger: false }), flush: async () => {} };
  }
  const exporter = new OtelExporter({
    provider: { custom: { endpoint: ENDPOINT, protocol: "http/protobuf" } },
    signals: { logs: false },
  });
  const observability = new Observability({
    configs: { otel: { serviceName: "mastra-bench-server", exporters: [exporter, counter] } },
  });
  const mastra = new Mastra({ workflows, observability, logger: false });
  return { mastra, flush: () => exporter.flush() };
}

async function main() {
  const { mastra, flush } = setup();
  const app = new Hono();
  app.post("/bench/flush", async (c) => {
    await flush();
    return c.json({ ended: counter.ended });
  });
  const server = new MastraServer({ app, mastra });
  await server.init();
  const listener = serve({ fetch: app.fetch, hostname: "127.0.0.1", port: 0 }, (info) => {
    process.stdout.write(`READY http://127.0.0.1:${info.port}\n`);
  });
  // Idle connections stay open for 10 minutes (Node's default: 5 s), as on spanflow's server
  // (bench/spanflow_server.py, KEEP_ALIVE): the client's connections idle while the other
  // servers are measured, and a request racing a keep-alive close fails.
  listener.keepAliveTimeout = 600_000;
  process.stdin.resume();
  process.stdin.on("end", async () => {
    listener.close();
    await mastra.shutdown?.();
    process.exit(0);
  });
}

main().catch((error) => {
  process.stderr.write(`${error?.stack ?? error}\n`);
  process.exit(1);
});
