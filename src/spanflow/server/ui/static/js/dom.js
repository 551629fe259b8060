// Building the page: elements from tags, attributes and children, text always as text.
//
// Nothing here (or anywhere in the run browser) parses HTML: every value that comes from a run
// (inputs, outputs, errors, ids) reaches the page as a text node, textContent or an attribute.

/**
 * h("td", {class: "status", dataset: {runId}}, "text", otherNode): an element. Strings and
 * numbers become text nodes; null, undefined and false children are skipped.
 */
export function h(tag, attrs = {}, ...children) {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") element.className = value;
    else if (key === "dataset") Object.assign(element.dataset, value);
    else if (key === "style") setStyle(element, value);
    else if (key.startsWith("on")) element.addEventListener(key.slice(2), value);
    else if (key === "text") element.textContent = value;
    else if (value === true) element.setAttribute(key, "");
    else element.setAttribute(key, String(value));
  }
  append(element, children);
  return element;
}

// Through the CSSOM (allowed by the page's Content-Security-Policy, unlike style attributes).
function setStyle(element, styles) {
  for (const [name, value] of Object.entries(styles)) element.style.setProperty(name.replace(/[A-Z]/g, (c) => "-" + c.toLowerCase()), String(value));
}

function append(element, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replace the children of `element`. */
export function fill(element, ...children) {
  element.replaceChildren();
  append(element, children);
  return element;
}

/** A value as indented JSON text (strings as they are). */
export function pretty(value) {
  if (value === undefined) return "";
  if (typeof value === "string") return value;
  return JSON.stringify(value, null, 2);
}

/** A value as one short line. */
export function short(value, max = 120) {
  const text = typeof value === "string" ? value : JSON.stringify(value);
  if (text === undefined) return "";
  return text.length > max ? text.slice(0, max - 1) + "…" : text;
}

/** 1234 -> "1.23 s", 45 -> "45 ms", 125000 -> "2 min 5 s". */
export function duration(ms) {
  if (ms === null || ms === undefined || !isFinite(ms)) return "";
  if (ms < 1000) return Math.round(ms) + " ms";
  if (ms < 60000) return (ms / 1000).toFixed(ms < 10000 ? 2 : 1) + " s";
  const minutes = Math.floor(ms / 60000);
  if (minutes < 60) return minutes + " min " + Math.round((ms % 60000) / 1000) + " s";
  return Math.floor(minutes / 60) + " h " + (minutes % 60) + " min";
}

/** A date (ISO text or epoch ms) in the reader's locale, to the second. */
export function when(value) {
  if (value === null || value === undefined || value === "") return "";
  const date = new Date(value);
  if (isNaN(date)) return String(value);
  const thisYear = date.getFullYear() === new Date().getFullYear();
  return date.toLocaleString(undefined, {
    year: thisYear ? undefined : "numeric", month: "short", day: "numeric",
    hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23",
  });
}

/** A status badge: the status as text, coloured by class. */
export function badge(status, attrs = {}) {
  return h("span", { ...attrs, class: `badge status-${status || "unknown"}` }, status || "unknown");
}

/** An error box with the message as text. */
export function errorBox(message) {
  return h("p", { class: "error-box", role: "alert" }, message);
}

export function link(href, text, attrs = {}) {
  return h("a", { ...attrs, href }, text);
}
