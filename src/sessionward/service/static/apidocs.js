// The API documentation page (/v1/): renders /openapi.json and lets one call each operation
// with an API key. Everything is built with DOM calls (no innerHTML: the document's text is
// data, never markup); the key stays in this page's memory and is sent only to this origin.
"use strict";

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (name === "text") node.textContent = value;
    else node.setAttribute(name, value);
  }
  for (const child of children) if (child) node.append(child);
  return node;
}

function resolve(doc, schema) {
  let seen = 0;
  while (schema && schema.$ref && seen++ < 20) {
    schema = schema.$ref.replace(/^#\//, "").split("/").reduce((o, k) => (o || {})[k], doc);
  }
  return schema || {};
}

function example(doc, schema, depth) {
  schema = resolve(doc, schema);
  if (depth > 4) return null;
  if (schema.example !== undefined) return schema.example;
  if (schema.default !== undefined) return schema.default;
  if (schema.enum) return schema.enum[0];
  const type = Array.isArray(schema.type) ? schema.type.find((t) => t !== "null") : schema.type;
  if (type === "object" || schema.properties) {
    const out = {};
    const required = new Set(schema.required || []);
    for (const [name, sub] of Object.entries(schema.properties || {})) {
      if (required.has(name) || depth === 0) out[name] = example(doc, sub, depth + 1);
    }
    return out;
  }
  if (type === "array") return [];
  if (type === "integer" || type === "number") return schema.minimum || 0;
  if (type === "boolean") return false;
  if (type === "string") return schema.format === "date-time" ? "" : "";
  return null;
}

let counter = 0;

function operation(doc, path, method, op, keyInput) {
  const id = "op" + ++counter;
  const body = el("div", { class: "body" });
  if (op.description) body.append(el("p", { text: op.description }));
  const params = (op.parameters || []).map((p) => resolve(doc, p));
  const inputs = {};
  for (const p of params) {
    const inputId = `${id}-${p.name}`;
    body.append(el("label", { for: inputId, text: `${p.name} (${p.in})` }));
    inputs[p.name] = el("input", { id: inputId, type: "text", autocomplete: "off" });
    body.append(inputs[p.name]);
  }
  for (const match of path.matchAll(/\{([^}]+)\}/g)) {
    if (inputs[match[1]]) continue;
    const inputId = `${id}-${match[1]}`;
    body.append(el("label", { for: inputId, text: `${match[1]} (path)` }));
    inputs[match[1]] = el("input", { id: inputId, type: "text", autocomplete: "off" });
    body.append(inputs[match[1]]);
  }
  let text = null;
  const content = op.requestBody && op.requestBody.content && op.requestBody.content["application/json"];
  if (content) {
    const textId = `${id}-body`;
    body.append(el("label", { for: textId, text: "Request body (JSON)" }));
    text = el("textarea", { id: textId, spellcheck: "false" });
    text.value = JSON.stringify(example(doc, content.schema, 0), null, 2);
    body.append(text);
  }
  const table = el("table", {}, el("caption", { class: "summary", text: "Answers" }),
    el("thead", {}, el("tr", {}, el("th", { scope: "col", text: "Status" }),
      el("th", { scope: "col", text: "Meaning" }))));
  const rows = el("tbody");
  for (const [status, answer] of Object.entries(op.responses || {})) {
    rows.append(el("tr", {}, el("td", { text: status }), el("td", { text: resolve(doc, answer).description || "" })));
  }
  table.append(rows);
  const output = el("pre", { class: "answer", "aria-live": "polite", hidden: "" });
  const send = el("button", { type: "button", text: "Send request" });
  send.addEventListener("click", async () => {
    let url = path.replace(/\{([^}]+)\}/g, (_, name) => encodeURIComponent(inputs[name].value));
    const query = params.filter((p) => p.in === "query" && inputs[p.name].value)
      .map((p) => `${encodeURIComponent(p.name)}=${encodeURIComponent(inputs[p.name].value)}`);
    if (query.length) url += "?" + query.join("&");
    const headers = {};
    if (keyInput.value) headers.authorization = "Bearer " + keyInput.value.trim();
    const init = { method: method.toUpperCase(), headers, credentials: "omit", cache: "no-store" };
    if (text) { headers["content-type"] = "application/json"; init.body = text.value; }
    output.hidden = false;
    output.textContent = "…";
    try {
      const answer = await fetch(url, init);
      const raw = await answer.text();
      let shown = raw;
      try { shown = JSON.stringify(JSON.parse(raw), null, 2); } catch (e) { /* not JSON */ }
      output.textContent = `${answer.status} ${answer.statusText}\n\n${shown}`;
    } catch (e) {
      output.textContent = "The request failed: " + e;
    }
  });
  body.append(send, output, table);
  const summary = el("summary", {},
    el("span", { class: `method ${method}`, text: method }),
    el("span", { class: "path", text: path }),
    el("span", { class: "summary", text: op.summary || "" }));
  return el("details", { class: "op", id }, summary, body);
}

async function main() {
  const root = document.getElementById("operations");
  const keyInput = document.getElementById("api-key");
  let doc;
  try {
    const answer = await fetch("/openapi.json", { cache: "no-store" });
    doc = await answer.json();
  } catch (e) {
    root.textContent = "The OpenAPI document could not be loaded: " + e;
    return;
  }
  document.getElementById("title").textContent = `${doc.info.title} ${doc.info.version}`;
  if (doc.info.description) document.getElementById("about").textContent = doc.info.description;
  const groups = new Map();
  for (const [path, item] of Object.entries(doc.paths)) {
    const group = path.startsWith("/v1/") ? path.split("/")[2] : "operations";
    for (const [method, op] of Object.entries(item)) {
      if (!["get", "post", "put", "patch", "delete"].includes(method)) continue;
      if (!groups.has(group)) groups.set(group, []);
      groups.get(group).push(operation(doc, path, method, op, keyInput));
    }
  }
  root.textContent = "";
  for (const [group, ops] of groups) {
    root.append(el("section", { "aria-label": group }, el("h2", { text: group }), ...ops));
  }
  root.setAttribute("aria-busy", "false");
}

main();
