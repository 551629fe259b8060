// The API client: fetch with the bearer token, and readers for the two stream formats.
//
// Workflow streams are JSON records each ended by "\x1e" (the ASCII record separator); agent
// streams are Server-Sent Events, "data: <json>" blocks ending with "data: [DONE]".

const config = window.SPANFLOW_UI || { apiPrefix: "/api", jaegerUi: null };
const TOKEN_KEY = "spanflow.token";

export const jaegerUi = config.jaegerUi || null;

/** The API answered 401: the page asks for the token and tries again. */
export class AuthRequired extends Error {}

/** Any other answer that is not a success, with the API's own message. */
export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(value) {
  if (value) sessionStorage.setItem(TOKEN_KEY, value);
  else sessionStorage.removeItem(TOKEN_KEY);
}

/** `path` under the API prefix, with `query` (values left out when empty). */
export function apiUrl(path, query = {}) {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value !== undefined && value !== null && value !== "") params.set(key, String(value));
  }
  const search = params.toString();
  return config.apiPrefix + path + (search ? "?" + search : "");
}

/** One request; resolves to the Response when it is a success, throws otherwise. */
export async function request(method, path, { query, body, signal } = {}) {
  const headers = {};
  const saved = token();
  if (saved) headers.Authorization = "Bearer " + saved;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(apiUrl(path, query), {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    signal,
  });
  if (response.status === 401) throw new AuthRequired("the API wants a token");
  if (!response.ok) {
    let message = response.status + " " + response.statusText;
    try {
      const data = await response.json();
      if (data && typeof data.error === "string") message = data.error;
    } catch {
      // not JSON: keep the status line
    }
    throw new ApiError(response.status, message);
  }
  return response;
}

export async function getJson(path, query, signal) {
  return (await request("GET", path, { query, signal })).json();
}

export async function postJson(path, body, query, signal) {
  return (await request("POST", path, { query, body, signal })).json();
}

/** A path segment, encoded (ids may hold any character). */
export function seg(value) {
  return encodeURIComponent(value);
}

async function* textChunks(response) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      yield decoder.decode(value, { stream: true });
    }
    const tail = decoder.decode();
    if (tail) yield tail;
  } finally {
    reader.releaseLock();
  }
}

/** The events of a workflow stream (records separated by "\x1e"), as they arrive. */
export async function* records(response) {
  let buffer = "";
  for await (const text of textChunks(response)) {
    buffer += text;
    let end;
    while ((end = buffer.indexOf("\x1e")) >= 0) {
      const record = buffer.slice(0, end);
      buffer = buffer.slice(end + 1);
      if (record.trim()) yield JSON.parse(record);
    }
  }
  if (buffer.trim()) yield JSON.parse(buffer);
}

/** The chunks of a Server-Sent Events stream, until "data: [DONE]". */
export async function* sseChunks(response) {
  let buffer = "";
  for await (const text of textChunks(response)) {
    buffer += text.replace(/\r\n/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const data = block
        .split("\n")
        .filter((line) => line.startsWith("data:"))
        .map((line) => line.slice(5).replace(/^ /, ""))
        .join("\n");
      if (!data) continue;
      if (data === "[DONE]") return;
      yield JSON.parse(data);
    }
  }
}
