// A form from a JSON Schema (as pydantic writes them): object properties of type string,
// number, integer, boolean or enum, nested objects, const values; arrays, free-form objects
// and anything else as JSON text. `$ref`s into `$defs` are followed; `anyOf` with null makes a
// field optional. Required fields and the schema's bounds are checked on submit, each field
// showing its own message.

import { h } from "./dom.js";

const SKIP = Symbol("skip"); // an optional field left empty: not sent

/**
 * buildForm(schema, "start") -> {element, read}: `read()` is {ok: true, value} or
 * {ok: false, errors: ["field: message", ...]} (the messages are shown beside the fields too).
 */
export function buildForm(schema, idPrefix) {
  const root = schema || null;
  const errors = [];
  const top = root ? field(root, root, [], true, idPrefix, errors) : jsonField(null, [], false, idPrefix, errors, "Input (JSON)");
  return {
    element: top.element,
    read() {
      errors.length = 0;
      for (const shown of top.element.querySelectorAll(".field-error")) shown.textContent = "";
      for (const bad of top.element.querySelectorAll("[aria-invalid]")) bad.removeAttribute("aria-invalid");
      const value = top.read();
      if (errors.length) return { ok: false, errors: errors.slice() };
      return { ok: true, value: value === SKIP ? null : value };
    },
  };
}

function resolve(schema, root) {
  let current = schema || {};
  for (let depth = 0; current.$ref && depth < 32; depth++) {
    const match = /^#\/(\$defs|definitions)\/(.+)$/.exec(current.$ref);
    const target = match && root[match[1]] ? root[match[1]][decodeURIComponent(match[2])] : null;
    if (!target) break;
    const { $ref, ...rest } = current;
    current = { ...target, ...rest };
  }
  const variants = current.anyOf || current.oneOf;
  if (Array.isArray(variants)) {
    const nonNull = variants.map((v) => resolve(v, root)).filter((v) => v.type !== "null");
    const nullable = nonNull.length < variants.length;
    const { anyOf, oneOf, ...rest } = current;
    let chosen;
    if (nonNull.length === 1) chosen = nonNull[0];
    else if (nonNull.some((v) => v.type === "string")) chosen = { type: "string" }; // e.g. a Decimal
    else chosen = nonNull.length ? nonNull[0] : {};
    return { ...chosen, ...rest, nullable };
  }
  return current;
}

function kindOf(schema) {
  if ("const" in schema) return "const";
  if (Array.isArray(schema.enum)) return "enum";
  if (schema.type === "object" && schema.properties) return "object";
  if (["string", "number", "integer", "boolean"].includes(schema.type)) return schema.type;
  return "json";
}

function field(rawSchema, root, path, required, idPrefix, errors) {
  const schema = resolve(rawSchema, root);
  const name = path.length ? path[path.length - 1] : null;
  const label = schema.title || name || "Input";
  switch (kindOf(schema)) {
    case "object": return objectField(schema, root, path, required, idPrefix, errors, label);
    case "const": return constField(schema, path, idPrefix, label);
    case "json": return jsonField(schema, path, required, idPrefix, errors, label);
    default: return scalarField(schema, path, required, idPrefix, errors, label);
  }
}

function fieldId(idPrefix, path) {
  return [idPrefix, ...path].join("-").replace(/[^A-Za-z0-9_-]/g, "_");
}

function wrap(schema, path, required, id, label, control) {
  const message = h("span", { class: "field-error", id: id + "-error", "aria-live": "polite" });
  control.setAttribute("aria-describedby", id + "-error");
  return {
    element: h(
      "div",
      { class: "field", dataset: { path: path.join(".") } },
      h("label", { for: id }, label, required ? h("span", { class: "req", title: "required" }, " *") : null),
      schema.description ? h("small", { class: "hint" }, schema.description) : null,
      control,
      message,
    ),
    fail(errors, text) {
      message.textContent = text;
      control.setAttribute("aria-invalid", "true");
      errors.push((path.join(".") || "input") + ": " + text);
      return SKIP;
    },
  };
}

function objectField(schema, root, path, required, idPrefix, errors, label) {
  const requiredNames = new Set(schema.required || []);
  const children = Object.entries(schema.properties).map(([key, sub]) => [
    key,
    field(sub, root, [...path, key], requiredNames.has(key), idPrefix, errors),
  ]);
  const body = children.map(([, child]) => child.element);
  const element = path.length
    ? h("fieldset", { class: "object", dataset: { path: path.join(".") } }, h("legend", {}, label), body)
    : h("div", { class: "object root" }, body);
  return {
    element,
    read() {
      const out = {};
      for (const [key, child] of children) {
        const value = child.read();
        if (value !== SKIP) out[key] = value;
      }
      return out;
    },
  };
}

function constField(schema, path, idPrefix, label) {
  const id = fieldId(idPrefix, path);
  const control = h("input", { id, name: path.join("."), value: String(schema.const), readonly: true });
  const { element } = wrap(schema, path, false, id, label, control);
  return { element, read: () => schema.const };
}

function scalarField(schema, path, required, idPrefix, errors, label) {
  const id = fieldId(idPrefix, path);
  const kind = kindOf(schema);
  const control = scalarControl(schema, kind, id, path);
  const wrapped = wrap(schema, path, required, id, label, control);
  if (kind === "boolean") {
    const element = h("div", { class: "field checkbox", dataset: { path: path.join(".") } }, control,
      h("label", { for: id }, label), schema.description ? h("small", { class: "hint" }, schema.description) : null);
    return { element, read: () => control.checked };
  }
  return {
    element: wrapped.element,
    read() {
      const text = control.value;
      if (text === "") {
        if (required && !schema.nullable) return wrapped.fail(errors, "required");
        return SKIP;
      }
      const problem = check(schema, kind, text);
      if (problem) return wrapped.fail(errors, problem);
      if (kind === "integer" || kind === "number") return Number(text);
      if (kind === "enum") return schema.enum.find((option) => String(option) === text);
      return text;
    },
  };
}

function scalarControl(schema, kind, id, path) {
  const name = path.join(".");
  if (kind === "enum") {
    const options = schema.enum.map((option) => h("option", { value: String(option) }, String(option)));
    const select = h("select", { id, name }, h("option", { value: "" }, "—"), options);
    if (schema.default !== undefined) select.value = String(schema.default);
    return select;
  }
  if (kind === "boolean") {
    return h("input", { id, name, type: "checkbox", checked: schema.default === true });
  }
  const numeric = kind === "integer" || kind === "number";
  return h("input", {
    id,
    name,
    type: numeric ? "number" : "text",
    step: kind === "integer" ? "1" : numeric ? "any" : undefined,
    value: schema.default !== undefined && schema.default !== null ? String(schema.default) : undefined,
    placeholder: schema.examples ? String(schema.examples[0]) : undefined,
  });
}

function check(schema, kind, text) {
  if (kind === "integer" && !/^-?\d+$/.test(text.trim())) return "must be a whole number";
  if (kind === "number" && !isFinite(Number(text))) return "must be a number";
  if (kind === "integer" || kind === "number") {
    const value = Number(text);
    if (schema.minimum !== undefined && value < schema.minimum) return `must be at least ${schema.minimum}`;
    if (schema.maximum !== undefined && value > schema.maximum) return `must be at most ${schema.maximum}`;
    if (schema.exclusiveMinimum !== undefined && value <= schema.exclusiveMinimum) return `must be above ${schema.exclusiveMinimum}`;
    if (schema.exclusiveMaximum !== undefined && value >= schema.exclusiveMaximum) return `must be below ${schema.exclusiveMaximum}`;
  }
  if (kind === "string") {
    if (schema.minLength !== undefined && text.length < schema.minLength) return `must be at least ${schema.minLength} characters`;
    if (schema.maxLength !== undefined && text.length > schema.maxLength) return `must be at most ${schema.maxLength} characters`;
    if (schema.pattern && !safeTest(schema.pattern, text)) return `must match ${schema.pattern}`;
  }
  return null;
}

function safeTest(pattern, text) {
  try {
    return new RegExp(pattern, "u").test(text);
  } catch {
    return true; // a pattern JavaScript cannot read: the server checks it
  }
}

function jsonField(schema, path, required, idPrefix, errors, label) {
  const id = fieldId(idPrefix, path);
  const kind = schema && schema.type === "array" ? "array" : schema && schema.type === "object" ? "object" : null;
  const initial = schema && schema.default !== undefined ? JSON.stringify(schema.default, null, 2) : "";
  const control = h("textarea", {
    id,
    name: path.join(".") || "input",
    rows: kind === "array" ? 6 : 4,
    spellcheck: "false",
    placeholder: kind === "array" ? "[ … ] (JSON)" : kind === "object" ? "{ … } (JSON)" : "JSON",
    class: "json",
  });
  control.value = initial;
  const wrapped = wrap(schema || {}, path, required, id, label + (kind ? ` (JSON ${kind})` : ""), control);
  return {
    element: wrapped.element,
    read() {
      const text = control.value.trim();
      if (!text) {
        if (required && !(schema && schema.nullable)) return wrapped.fail(errors, "required");
        return SKIP;
      }
      let value;
      try {
        value = JSON.parse(text);
      } catch (error) {
        return wrapped.fail(errors, "not valid JSON: " + error.message);
      }
      if (kind === "array" && !Array.isArray(value)) return wrapped.fail(errors, "must be a JSON array");
      if (kind === "object" && (typeof value !== "object" || value === null || Array.isArray(value))) {
        return wrapped.fail(errors, "must be a JSON object");
      }
      if (kind === "array" && schema.minItems !== undefined && value.length < schema.minItems) {
        return wrapped.fail(errors, `needs at least ${schema.minItems} item${schema.minItems === 1 ? "" : "s"}`);
      }
      return value;
    },
  };
}

/** Parse a schema sent as JSON text (as the API sends them); null for none. */
export function parseSchema(text) {
  if (!text) return null;
  if (typeof text === "object") return text;
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}
