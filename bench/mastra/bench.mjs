// Mastra 1.x running spanflow's benchmark scenarios 1-3, printing one JSON document on stdout.
//
// Usage: node bench.mjs '{"endpoint": "http://127.0.0.1:PORT/v1/traces", "steps": 1000,
//                         "runs": 2000, "reps": 5}'
// Each measurement is the median of `reps` timed repetitions after one warm-up, in the same
// shape as the Python scenarios emit (see bench/measure.py). Tracing "otel" is Mastra's own
// observability pipeline with @mastra/otel-exporter sending OTLP/HTTP (protobuf) to the
// loopback receiver the Python runner started; each timed repetition ends with the exporter's
// flush, so its export work is inside the timing, as it is for spanflow.
import { Mastra } from "@mastra/core/mastra";
import { createStep, createWorkflow } from "@mastra/core/workflows";
import { Observability } from "@mastra/observability";
import { OtelExporter } from "@mastra/otel-exporter";
import { z } from "zod";

const config = JSON.parse(process.argv[2] ?? "{}");
const STEPS = config.steps ?? 1000;
const RUNS = config.runs ?? 2000;
const REPS = config.reps ?? 5;
const ENDPOINT = config.endpoint;

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

function setup(tracing) {
  const workflows = { long: chain("long", STEPS), short: chain("short", 3) };
  if (tracing === "off") {
    return { mastra: new Mastra({ workflows, logger: false }), flush: async () => {} };
  }
  const exporter = new OtelExporter({
    provider: { custom: { endpoint: ENDPOINT, protocol: "http/protobuf" } },
    signals: { logs: false },
  });
  const observability = new Observability({
    configs: { otel: { serviceName: "mastra-bench", exporters: [exporter] } },
  });
  const mastra = new Mastra({ workflows, observability, logger: false });
  return { mastra, flush: () => exporter.flush() };
}

async function once(workflow, mode, expected) {
  const run = await workflow.createRun();
  let result;
  if (mode === "start") {
    result = await run.start({ inputData: { v: 0 } });
  } else {
    const out = run.stream({ inputData: { v: 0 } });
    for await (const _event of out.fullStream) {
      // consume every event
    }
    result = await out.result;
  }
  if (result.status !== "success" || result.result.v !== expected) {
    throw new Error(`unexpected result ${JSON.stringify(result.status)} ${JSON.stringify(result.result)}`);
  }
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

async function measure(body, flush) {
  const samples = [];
  for (let rep = -1; rep < REPS; rep++) {
    const t0 = process.hrtime.bigint();
    await body();
    await flush();
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    if (rep >= 0) samples.push(seconds);
  }
  return samples;
}

async function main() {
  const results = [];
  for (const tracing of ENDPOINT ? ["off", "otel"] : ["off"]) {
    const { mastra, flush } = setup(tracing);
    const long = mastra.getWorkflow("long");
    const short = mastra.getWorkflow("short");
    for (const mode of ["start", "stream"]) {
      const s1 = await measure(() => once(long, mode, STEPS), flush);
      results.push({
        key: `mastra.s1.${mode}.${tracing}`,
        samples: s1,
        median_s: median(s1),
        units: STEPS,
        unit: "step",
      });
      const s3 = await measure(async () => {
        for (let i = 0; i < RUNS; i++) await once(short, mode, 3);
      }, flush);
      results.push({
        key: `mastra.s3.${mode}.${tracing}`,
        samples: s3,
        median_s: median(s3),
        units: RUNS,
        unit: "run",
      });
    }
    await mastra.shutdown?.();
  }
  process.stdout.write(
    `${JSON.stringify({ peer: "mastra", version: config.version ?? null, node: process.version, results })}\n`,
  );
}

main().catch((error) => {
  process.stderr.write(`${error?.stack ?? error}\n`);
  process.exit(1);
});
