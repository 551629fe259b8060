// Drives a spanflow server with the real @mastra/client-js, one scenario per invocation.
//
//   node drive.mjs BASE_URL SCENARIO [ARG]
//
// ARG is the traceparent header of the tracing scenarios, or the second server's base URL of
// observe-elsewhere.
//
// Prints one JSON document on stdout: what the scenario saw (events, results, errors) plus
// `calls` (every HTTP exchange: method, path, status, content type, traceparent response
// header, recorded by a wrapping `fetch`, the client's own hook for it) and `clientErrors`
// (whatever the client logged with console.error: it reports SSE chunks it could not parse
// that way instead of throwing). tests/server/test_client_js.py asserts on that document.
// A scenario that throws prints {"failed": {...}} and exits 1.
//
// The client is built with `retries: 0`: by default it re-sends a request that got a 5xx,
// which would hide a server bug behind a second run.

import { MastraClient } from "@mastra/client-js";

const [baseUrl, scenario, arg] = process.argv.slice(2);
const calls = [];
const clientErrors = [];

console.error = (...args) => {
  clientErrors.push(args.map((value) => (value instanceof Error ? value.message : String(value))).join(" "));
};

async function recordingFetch(input, init) {
  const response = await fetch(input, init);
  const url = new URL(typeof input === "string" ? input : input.url);
  calls.push({
    method: init?.method ?? "GET",
    path: url.pathname + url.search,
    status: response.status,
    contentType: response.headers.get("content-type"),
    traceparent: response.headers.get("traceparent"),
  });
  return response;
}

// Every scenario takes well under a second; one that hangs (a stream that never ends, a
// request that never answers) is aborted, and reported with the calls it made.
const budget = AbortSignal.timeout(10_000);

function client(headers = {}, url = baseUrl) {
  return new MastraClient({ baseUrl: url, retries: 0, headers, fetch: recordingFetch, abortSignal: budget });
}

/** Every event of a workflow stream, read to its end. */
async function readAll(stream) {
  const events = [];
  for await (const event of stream) events.push(event);
  return events;
}

/** Events up to and including the first that matches, and the reader, still open: the caller
 * reads on, or cancels it, which closes the connection (a disconnect in the middle of the run). */
async function readUntil(stream, matches) {
  const reader = stream.getReader();
  const events = [];
  for (;;) {
    const { done, value } = await reader.read();
    if (done) throw new Error(`the stream ended before the awaited event: ${JSON.stringify(events)}`);
    events.push(value);
    if (matches(value)) break;
  }
  return { events, reader };
}

const stepStarted = (stepId) => (event) =>
  event.type === "workflow-step-start" && event.payload?.id === stepId;

/** The MastraClientError of a call that must fail, as plain data. */
async function failure(promise) {
  try {
    const value = await promise;
    return { unexpectedSuccess: value ?? null };
  } catch (error) {
    return { status: error.status ?? null, body: error.body ?? null, message: error.message };
  }
}

const ORDER = { order: "A-1", amount: 1200 };
const APPROVAL = { step: "approve", resumeData: { approver: "grace" } };

const scenarios = {
  async "create-run"() {
    const workflow = client().getWorkflow("approval");
    const run = await workflow.createRun({ resourceId: "user-7" });
    const chosen = await workflow.createRun({ runId: "run-chosen-by-client" });
    return {
      runId: run.runId,
      chosenRunId: chosen.runId,
      pending: await workflow.runById(run.runId),
    };
  },

  async "stream-suspends"() {
    const workflow = client().getWorkflow("approval");
    const run = await workflow.createRun();
    const events = await readAll(await run.stream({ inputData: ORDER, closeOnSuspend: true }));
    return { runId: run.runId, events, suspended: await workflow.runById(run.runId) };
  },

  async "stream-stays-open"() {
    // closeOnSuspend: false keeps the stream open through the suspension; a resume sent
    // meanwhile (fire and forget) continues in it, to the run's end.
    const workflow = client().getWorkflow("approval");
    const run = await workflow.createRun();
    const stream = await run.stream({ inputData: ORDER, closeOnSuspend: false });
    const { events: first, reader } = await readUntil(
      stream,
      (event) => event.type === "workflow-step-suspended",
    );
    const resumed = await run.resume(APPROVAL);
    const rest = [];
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      rest.push(value);
    }
    return { runId: run.runId, first, resumed, rest };
  },

  async "run-fields"() {
    const workflow = client().getWorkflow("approval");
    const run = await workflow.createRun();
    await run.startAsync({ inputData: ORDER });
    return { runId: run.runId, details: await workflow.runById(run.runId, { fields: ["steps"] }) };
  },

  async "resume-stream"() {
    const workflow = client().getWorkflow("approval");
    const run = await workflow.createRun();
    const first = await readAll(await run.stream({ inputData: ORDER }));
    const resumed = await readAll(await run.resumeStream(APPROVAL));
    return {
      runId: run.runId,
      first,
      resumed,
      success: await workflow.runById(run.runId),
    };
  },

  async "start-async"() {
    const workflow = client().getWorkflow("approval");
    const run = await workflow.createRun();
    const started = await run.startAsync({ inputData: ORDER });
    const resumed = await run.resumeAsync(APPROVAL);
    return { runId: run.runId, started, resumed };
  },

  async "start-and-resume"() {
    // Fire and forget, then observe: the second observe starts at the first one's length,
    // so it must carry only the resumed half.
    const workflow = client().getWorkflow("approval");
    const run = await workflow.createRun();
    const started = await run.start({ inputData: ORDER });
    const firstHalf = await readAll(await run.observe());
    const resumed = await run.resume(APPROVAL);
    const secondHalf = await readAll(await run.observe({ offset: firstHalf.length }));
    return {
      runId: run.runId,
      started,
      firstHalf,
      resumed,
      secondHalf,
      details: await workflow.runById(run.runId),
    };
  },

  async "restream-ended"() {
    const workflow = client().getWorkflow("approval");
    const run = await workflow.createRun();
    await run.startAsync({ inputData: ORDER });
    const suspended = await failure(run.stream({ inputData: ORDER }));
    await run.resumeAsync(APPROVAL);
    const ended = await failure(run.stream({ inputData: ORDER }));
    return { runId: run.runId, suspended, ended, details: await workflow.runById(run.runId) };
  },

  async runs() {
    // Two suspended, one succeeded, one pending, under a resource of their own.
    const workflow = client().getWorkflow("approval");
    const resourceId = "runs-scenario";
    const ids = { suspended: [], success: [], pending: [] };
    for (let i = 0; i < 3; i += 1) {
      const run = await workflow.createRun({ resourceId });
      await run.startAsync({ inputData: { order: `R-${i}`, amount: 10 * i }, resourceId });
      if (i === 2) {
        await run.resumeAsync(APPROVAL);
        ids.success.push(run.runId);
      } else {
        ids.suspended.push(run.runId);
      }
    }
    ids.pending.push((await workflow.createRun({ resourceId })).runId);
    await workflow.createRun({ resourceId: "someone-else" });
    const hourAhead = new Date(Date.now() + 3600_000);
    return {
      ids,
      page0: await workflow.runs({ resourceId, page: 0, perPage: 3 }),
      page1: await workflow.runs({ resourceId, page: 1, perPage: 3 }),
      suspended: await workflow.runs({ resourceId, status: "suspended" }),
      success: await workflow.runs({ resourceId, status: "success" }),
      fromFuture: await workflow.runs({ resourceId, fromDate: hourAhead }),
      toFuture: await workflow.runs({ resourceId, toDate: hourAhead }),
      all: await workflow.runs(),
    };
  },

  async "observe-after-disconnect"() {
    const api = client();
    const workflow = api.getWorkflow("gated");
    const run = await workflow.createRun();
    const gate = run.runId;
    const { events: seen, reader } = await readUntil(
      await run.stream({ inputData: { gate } }),
      stepStarted("wait-for-gate"),
    );
    await reader.cancel();
    // The run waits at its gate, which nobody has opened: it can only be running.
    const whileDisconnected = await workflow.runById(run.runId);
    const opener = await api.getWorkflow("open-gate").createRun();
    const opened = await opener.startAsync({ inputData: { gate } });
    const rest = await readAll(await run.observe({ offset: seen.length }));
    const replay = await readAll(await run.observe());
    return {
      runId: run.runId,
      seen,
      whileDisconnected,
      opened,
      rest,
      replay,
      details: await workflow.runById(run.runId),
    };
  },

  async "observe-elsewhere"() {
    // The run executes on this server; another one, sharing its store, is asked about it by
    // id (createRun with a stored run's id is that run) and observes it from the event log.
    const here = client();
    const elsewhere = client({}, arg).getWorkflow("gated");
    const run = await here.getWorkflow("gated").createRun();
    const gate = run.runId;
    const { events: seen, reader } = await readUntil(
      await run.stream({ inputData: { gate } }),
      stepStarted("wait-for-gate"),
    );
    await reader.cancel();
    const same = await elsewhere.createRun({ runId: run.runId });
    const whileWaiting = await elsewhere.runById(run.runId);
    const observing = await same.observe({ offset: seen.length });
    const opener = await here.getWorkflow("open-gate").createRun();
    await opener.startAsync({ inputData: { gate } });
    const rest = await readAll(observing);
    return {
      runId: run.runId,
      sameRunId: same.runId,
      seen,
      whileWaiting,
      rest,
      details: await elsewhere.runById(run.runId),
    };
  },

  async cancel() {
    const workflow = client().getWorkflow("gated");
    const run = await workflow.createRun();
    const stream = await run.stream({ inputData: { gate: run.runId } });
    const { events: before, reader } = await readUntil(stream, stepStarted("wait-for-gate"));
    const canceled = await run.cancel();
    const after = [];
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      after.push(value);
    }
    return { runId: run.runId, before, canceled, after, details: await workflow.runById(run.runId) };
  },

  async delete() {
    const workflow = client().getWorkflow("approval");
    const run = await workflow.createRun();
    await run.startAsync({ inputData: ORDER });
    const deleted = await workflow.deleteRunById(run.runId);
    return { runId: run.runId, deleted, afterwards: await failure(workflow.runById(run.runId)) };
  },

  async "agent-stream"() {
    const response = await client().getAgent("weather").stream("What is the weather in Paris?");
    const chunks = [];
    await response.processDataStream({
      onChunk: async (chunk) => {
        chunks.push(chunk);
      },
    });
    return { status: response.status, chunks };
  },

  async "agent-generate"() {
    const output = await client().getAgent("weather").generate("What is the weather in Paris?");
    return { output };
  },

  async traceparent() {
    const workflow = client({ traceparent: arg }).getWorkflow("approval");
    const run = await workflow.createRun();
    const started = await run.startAsync({ inputData: ORDER });
    const resumed = await readAll(await run.resumeStream(APPROVAL));
    return { runId: run.runId, started, resumed };
  },

  async "tracing-options"() {
    // The body's tracingOptions, camelCase as the client sends them, next to a traceparent
    // header: the body's parent wins.
    const workflow = client({ traceparent: arg }).getWorkflow("approval");
    const run = await workflow.createRun();
    const started = await run.startAsync({
      inputData: ORDER,
      tracingOptions: {
        traceId: "abc123",
        parentSpanId: "def456",
        tags: ["vip"],
        metadata: { user: { id: "u-42" } },
      },
    });
    return { runId: run.runId, started };
  },
};

const play = scenarios[scenario];
if (!play) {
  process.stderr.write(`unknown scenario ${scenario}; known: ${Object.keys(scenarios).join(", ")}\n`);
  process.exit(2);
}
try {
  const result = await play();
  process.stdout.write(`${JSON.stringify({ ...result, calls, clientErrors })}\n`);
} catch (error) {
  const failed = { name: error?.name, message: error?.message, status: error?.status, body: error?.body };
  process.stdout.write(`${JSON.stringify({ failed, calls, clientErrors })}\n`);
  process.exit(1);
}
