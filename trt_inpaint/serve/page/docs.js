// Renders this server's OpenAPI description (/openapi.json) without anything from another origin.
"use strict";

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

function schemaText(schema, doc, depth = 0) {
  if (!schema) return "";
  if (schema.$ref) {
    const name = schema.$ref.split("/").pop();
    return depth > 2 ? name : `${name} ${schemaText(doc.components.schemas[name], doc, depth + 1)}`;
  }
  if (schema.anyOf) return schema.anyOf.map((s) => schemaText(s, doc, depth)).join(" | ");
  if (schema.enum) return schema.enum.map((v) => JSON.stringify(v)).join(" | ");
  if (schema.type === "object" && schema.properties) {
    const req = new Set(schema.required || []);
    const fields = Object.entries(schema.properties).map(
      ([k, v]) => `${"  ".repeat(depth + 1)}${k}${req.has(k) ? "" : "?"}: ${schemaText(v, doc, depth + 1)}`);
    return `{\n${fields.join("\n")}\n${"  ".repeat(depth)}}`;
  }
  if (schema.type === "array") return `[${schemaText(schema.items, doc, depth)}]`;
  return schema.format ? `${schema.type} (${schema.format})` : schema.type || "any";
}

async function main() {
  const root = document.getElementById("docs");
  let doc;
  try {
    const r = await fetch("/openapi.json");
    if (!r.ok) throw new Error(`${r.status}: ${(await r.json()).error}`);
    doc = await r.json();
  } catch (e) {
    root.replaceChildren(el("p", { class: "error" }, `Cannot load /openapi.json (${e.message})`));
    return;
  }
  const parts = [el("p", {}, `${doc.info.title} ${doc.info.version}: ${doc.info.description || ""}`)];
  for (const [path, ops] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(ops)) {
      const card = el("section", { class: "endpoint" });
      card.append(el("h2", {}, el("span", { class: `method ${method}` }, method.toUpperCase()), ` ${path}`));
      if (op.summary) card.append(el("p", {}, op.summary));
      if (op.description) card.append(el("p", { class: "hint" }, op.description));
      for (const p of op.parameters || []) card.append(el("p", { class: "hint" }, `path parameter ${p.name}`));
      const body = op.requestBody?.content || {};
      for (const [type, c] of Object.entries(body)) {
        card.append(el("h3", {}, `request ${type}`), el("pre", {}, schemaText(c.schema, doc)));
      }
      const table = el("table");
      for (const [code, resp] of Object.entries(op.responses || {})) {
        const types = Object.entries(resp.content || {}).map(([t, c]) => `${t} ${schemaText(c.schema, doc)}`);
        const headers = Object.keys(resp.headers || {});
        table.append(el("tr", {}, el("td", {}, code), el("td", {}, resp.description || ""),
          el("td", {}, el("pre", {}, types.join("\n") + (headers.length ? `\nheaders: ${headers.join(", ")}` : "")))));
      }
      card.append(el("h3", {}, "responses"), table);
      parts.push(card);
    }
  }
  root.replaceChildren(...parts);
}

main();
