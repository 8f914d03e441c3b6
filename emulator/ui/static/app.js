// k8semu ui: the picture, counters and matrix arrive as Server-Sent Events; traces and probes are POSTs.
"use strict";
const $ = (id) => document.getElementById(id);
let lastCounters = {};
let path = [];

function text(el, value) { el.textContent = value; }

function highlight() {
  document.querySelectorAll(".on-path").forEach((el) => el.classList.remove("on-path"));
  for (const id of path) {
    const el = document.getElementById(id);
    if (el) el.classList.add("on-path");
  }
}

function picture(data) {
  $("picture").innerHTML = data.svg;  // drawn by Graphviz from the API's objects (labels escaped)
  const s = $("summary");
  s.dataset.pods = data.pods; s.dataset.ready = data.ready; s.dataset.at = data.at;
  text(s, `${data.nodes} nodes · ${data.ready}/${data.pods} pods ready · ${data.services} services`);
  highlight();
}

function counters(data) {
  const tables = data.tables || {};
  const nodes = Object.keys(tables).sort();
  const names = nodes.length ? Object.keys(tables[nodes[0]]) : [];
  const t = document.createElement("table");
  const head = t.insertRow();
  for (const h of ["table"].concat(nodes)) { const th = document.createElement("th"); text(th, h); head.appendChild(th); }
  for (const name of names) {
    const row = t.insertRow();
    text(row.insertCell(), name);
    for (const node of nodes) {
      const cell = row.insertCell();
      const now = tables[node][name];
      const before = (lastCounters[node] || {})[name];
      text(cell, now);
      cell.dataset.node = node; cell.dataset.table = name;
      if (before !== undefined && now !== before) cell.classList.add("moving");
    }
  }
  lastCounters = tables;
  $("counters").replaceChildren(t);
}

function matrix(data) {
  const box = $("matrix");
  box.replaceChildren();
  for (const [key, rows] of Object.entries(data.tables || {})) {
    const caption = document.createElement("div"); text(caption, key); box.appendChild(caption);
    const t = document.createElement("table");
    const sources = Object.keys(rows).sort();
    const dests = sources.length ? Object.keys(rows[sources[0]]).sort() : [];
    const head = t.insertRow();
    for (const h of [""].concat(dests)) { const th = document.createElement("th"); text(th, h); head.appendChild(th); }
    for (const src of sources) {
      const row = t.insertRow();
      text(row.insertCell(), src);
      for (const dst of dests) {
        const ok = rows[src][dst];
        const cell = row.insertCell();
        cell.className = "cell " + (ok ? "allowed" : "denied");
        cell.dataset.source = src; cell.dataset.destination = dst;
        text(cell, ok ? "✓" : "✗");
      }
    }
    box.appendChild(t);
  }
}

async function post(url, body) {
  const r = await fetch(url, { method: "POST", headers: { "Content-Type": "application/json" },
                               body: JSON.stringify(body), credentials: "same-origin" });
  return r.json();
}

$("trace-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  text($("trace-verdict"), "tracing…");
  const ns = $("trace-namespace").value || "default";
  const out = await post("api/trace", { source: $("trace-source").value, destination: $("trace-destination").value,
                                        port: $("trace-port").value, namespace: ns, live: $("trace-live").checked });
  const hops = $("trace-hops");
  hops.replaceChildren();
  if (out.error) { text($("trace-verdict"), out.error); return; }
  const v = $("trace-verdict");
  v.dataset.verdict = out.verdict;
  text(v, `${out.verdict}: ${out.where}` + (out.live ? (out.live.agrees ? " (live agrees)" : " (LIVE DISAGREES)") : ""));
  for (const h of out.hops) {
    const li = document.createElement("li");
    li.className = h.kind;
    const what = h.table ? h.text.replace(h.table + ": ", "") : h.text;
    text(li, `${h.node} ${h.table || h.kind}: ${what}` + (h.owner && h.owner !== "pipeline" ? ` [${h.owner}]` : ""));
    hops.appendChild(li);
  }
  const ids = new Set();
  const src = out.source || "";
  if (!src.includes("/") || src.startsWith("pod/")) ids.add(`pod:${ns}:${src.replace(/^pod\//, "")}`);
  const dst = $("trace-destination").value;
  if (dst.startsWith("svc/")) ids.add(`service:${ns}:${dst.slice(4)}`);
  const m = /^pod (\S+)\/(\S+)$/.exec(out.where || "");
  if (m) ids.add(`pod:${m[1]}:${m[2]}`);
  for (const h of out.hops) ids.add(`node:${h.node}`);
  path = Array.from(ids);
  highlight();
});

$("probe-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  text($("matrix"), "probing…");
  const out = await post("api/probe", { namespaces: $("probe-namespaces").value, ports: $("probe-ports").value });
  if (out.error) text($("matrix"), out.error); else matrix(out);
});

const events = new EventSource("events");
events.addEventListener("picture", (e) => picture(JSON.parse(e.data)));
events.addEventListener("counters", (e) => counters(JSON.parse(e.data)));
events.addEventListener("matrix", (e) => matrix(JSON.parse(e.data)));
events.addEventListener("problem", (e) => text($("problem"), JSON.parse(e.data).error));
