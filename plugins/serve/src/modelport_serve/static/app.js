// The export page: plain JS over the same HTTP API a platform calls (no build step).
"use strict";

const $ = (sel) => document.querySelector(sel);
const state = { token: sessionStorage.getItem("modelport-token") || "", models: [], formats: [] };

function headers(extra) {
  const h = Object.assign({}, extra || {});
  if (state.token) h["Authorization"] = "Bearer " + state.token;
  return h;
}

async function api(path, options) {
  const opts = Object.assign({}, options || {});
  opts.headers = headers(opts.headers);
  const res = await fetch(path, opts);
  if (res.status === 401) { $("#auth").hidden = false; throw new Error("this server needs a token"); }
  const body = res.headers.get("content-type")?.includes("json") ? await res.json() : null;
  if (!res.ok) throw new Error((body && body.error) || res.statusText);
  return body;
}

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v; else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (v !== null && v !== undefined && v !== false) e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(c ?? ""));
  return e;
}

function fmtBytes(n) {
  if (n == null) return "";
  const units = ["B", "KB", "MB", "GB"]; let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(1) : n) + " " + units[i];
}

// ------------------------------------------------------------------ form

function renderModels() {
  const sel = $("#model"); sel.replaceChildren();
  for (const m of state.models) {
    sel.append(el("option", { value: m.name, disabled: m.error ? true : null }, m.name + (m.error ? " (misconfigured)" : "")));
  }
  renderCheckpoints();
}

function currentModel() { return state.models.find((m) => m.name === $("#model").value); }

function renderCheckpoints() {
  const m = currentModel(); const sel = $("#checkpoint"); sel.replaceChildren();
  if (!m) return;
  for (const c of m.checkpoints) sel.append(el("option", { value: c.name }, `${c.name} (${fmtBytes(c.bytes)})`));
  sel.append(el("option", { value: "" }, "factory weights (no checkpoint)"));
  const shape = (m.inputs[0] || "").split(":")[1] || "";
  const dims = shape.split("x");
  $("#resolution").value = dims.length === 4 ? dims.slice(2).join("x") : "";
  $("#resolution").disabled = dims.length !== 4;
  $("#dynamic-batch").checked = !!m.dynamic_batch;
  $("#model-info").textContent = `${m.description || ""} — inputs: ${m.inputs.join(", ")}${m.task ? " — task: " + m.task : ""}`;
}

function renderFormats() {
  const box = $("#formats"); box.replaceChildren();
  for (const f of state.formats) {
    const ok = f.can_export;
    const input = el("input", { type: "checkbox", name: "format", value: f.name, disabled: !ok, onchange: renderOptions });
    const label = el("label", { class: ok ? "" : "unavailable", title: f.summary }, input, " " + f.display_name + ` (${f.name})`);
    if (!ok) label.append(el("span", { class: "why" }, f.status + (f.reason ? ": " + f.reason : "") + (f.fix ? " — " + f.fix : "")));
    else if (!f.can_validate) label.append(el("span", { class: "why" }, "exports; cannot validate here: " + (f.reason || "")));
    box.append(label);
  }
  const first = box.querySelector("input:not([disabled])");
  if (first) first.checked = true;
  renderOptions();
}

function selectedFormats() { return [...document.querySelectorAll("input[name=format]:checked")].map((i) => i.value); }

function renderOptions() {
  const box = $("#format-options"); box.replaceChildren();
  for (const name of selectedFormats()) {
    const f = state.formats.find((x) => x.name === name);
    if (!f || !f.options.length) continue;
    const group = el("div", { class: "fmt-options" }, el("h4", {}, f.display_name));
    for (const o of f.options) {
      let input;
      const id = `opt-${name}-${o.name}`;
      if (o.type === "bool") input = el("input", { type: "checkbox", id, checked: !!o.default });
      else if (o.type === "choice") {
        input = el("select", { id });
        for (const c of o.choices) input.append(el("option", { value: c, selected: c === o.default ? true : null }, c));
      } else input = el("input", { id, size: 8, value: o.default ?? "", placeholder: o.type });
      input.dataset.format = name; input.dataset.option = o.name; input.dataset.type = o.type; input.dataset.default = JSON.stringify(o.default);
      group.append(el("label", { title: o.help }, o.name + " ", input));
    }
    box.append(group);
  }
}

function collectOptions() {
  const out = {};
  for (const input of document.querySelectorAll("#format-options [data-option]")) {
    const { format, option, type } = input.dataset;
    let value = type === "bool" ? input.checked : input.value;
    if (value === "" || JSON.stringify(value) === input.dataset.default || String(value) === String(JSON.parse(input.dataset.default))) continue;
    if (type === "int") value = parseInt(value, 10); else if (type === "float") value = parseFloat(value);
    (out[format] = out[format] || {})[option] = value;
  }
  return out;
}

function collectRequest() {
  const m = currentModel();
  const req = { model: m.name, formats: selectedFormats(), dynamic_batch: $("#dynamic-batch").checked,
                validate: $("#validate").checked, options: collectOptions() };
  if ($("#checkpoint").value) req.checkpoint = $("#checkpoint").value;
  const res = $("#resolution").value.trim();
  if (res && !$("#resolution").disabled) {
    const [name, shape, dtype] = m.inputs[0].split(":"); const dims = shape.split("x");
    const hw = res.split(/[x,]/);
    req.inputs = [`${name}:${dims[0]}x${dims[1]}x${hw[0]}x${hw[1] || hw[0]}:${dtype || "float32"}`, ...m.inputs.slice(1)];
  }
  return req;
}

// ------------------------------------------------------------------ a running job

const jobRows = {};

function showJob(job) {
  $("#job").hidden = false;
  $("#job-id").textContent = job.id;
  const st = $("#job-state"); st.textContent = job.state; st.className = "state " + job.state;
  $("#job-phase").textContent = job.phase ? "phase: " + job.phase : "";
  $("#job-error").textContent = job.error || "";
  const body = $("#job-formats tbody");
  for (const fmt of job.request.formats) {
    if (!jobRows[fmt]) {
      jobRows[fmt] = el("tr", { "data-format": fmt }, el("td", {}, fmt), el("td", { class: "progress" }, "queued"),
        el("td", { class: "validation" }), el("td", { class: "maxdiff" }), el("td", { class: "size" }), el("td", { class: "download" }));
      body.append(jobRows[fmt]);
    }
    const row = jobRows[fmt]; const r = (job.formats || {})[fmt];
    if (r) {
      row.querySelector(".progress").textContent = r.exit_code === 0 || r.exit_code === 2 ? "done" : "failed";
      const v = r.validation || {};
      const vc = row.querySelector(".validation"); vc.textContent = v.status || r.status; vc.className = "validation v-" + (v.status || r.status);
      row.querySelector(".maxdiff").textContent = v.max_abs_diff == null ? "" : Number(v.max_abs_diff).toExponential(2);
      row.querySelector(".size").textContent = fmtBytes(r.size_bytes);
      const dl = row.querySelector(".download"); dl.replaceChildren();
      if (r.export_id) {
        dl.append(el("button", { type: "button", class: "small", "data-download": fmt,
          onclick: () => download(`/api/exports/${job.id}/download?format=${fmt}`, r.export_id + ".zip") }, "zip"));
        if (r.artifact) dl.append(" ", el("button", { type: "button", class: "small",
          onclick: () => download(`/api/exports/${job.id}/files/${encodeURIComponent(r.artifact)}?format=${fmt}`, r.artifact) }, r.artifact));
      }
      if (r.error) row.querySelector(".progress").title = r.error;
    } else if (job.state === "running" && job.phase) {
      const [verb, pf] = job.phase.split(" ");
      if (pf === fmt) row.querySelector(".progress").textContent = verb + "…";
      else if (verb === "loading") row.querySelector(".progress").textContent = "loading…";
    } else if (["failed", "cancelled"].includes(job.state)) row.querySelector(".progress").textContent = job.state;
  }
}

async function follow(jobId) {
  for (const k of Object.keys(jobRows)) delete jobRows[k];
  $("#job-formats tbody").replaceChildren();
  let job = await api(`/api/exports/${jobId}`);
  showJob(job);
  const res = await fetch(`/api/exports/${jobId}/events`, { headers: headers() });
  const reader = res.body.getReader(); const decoder = new TextDecoder(); let buf = "";
  while (true) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buf.indexOf("\n\n")) >= 0) {
      const chunk = buf.slice(0, cut); buf = buf.slice(cut + 2);
      const data = chunk.split("\n").filter((l) => l.startsWith("data: ")).map((l) => l.slice(6)).join("\n");
      if (!data) continue;
      const ev = JSON.parse(data);
      if (ev.type === "phase") { job.phase = ev.phase; job.state = "running"; }
      if (ev.type === "state") { job.state = ev.state; if (ev.result) job.formats = ev.result.formats || {}; job.error = ev.error; }
      showJob(job);
    }
  }
  job = await api(`/api/exports/${jobId}`);
  showJob(job);
  loadHistory();
  return job;
}

async function download(url, filename) {
  const res = await fetch(url, { headers: headers() });
  if (!res.ok) { $("#job-error").textContent = "download failed: " + ((await res.json()).error || res.statusText); return; }
  const blob = await res.blob();
  const a = el("a", { href: URL.createObjectURL(blob), download: filename });
  document.body.append(a); a.click(); a.remove();
}

// ------------------------------------------------------------------ history

async function loadHistory() {
  const data = await api("/api/exports?limit=50");
  const body = $("#past tbody"); body.replaceChildren();
  for (const j of data.exports) {
    body.append(el("tr", { "data-job": j.id },
      el("td", {}, el("code", {}, j.id)), el("td", {}, j.request.model), el("td", {}, j.request.checkpoint || "—"),
      el("td", {}, j.request.formats.join(", ")), el("td", {}, el("span", { class: "state " + j.state }, j.state)),
      el("td", {}, (j.created_at || "").replace("T", " ").slice(0, 19)),
      el("td", {}, el("button", { type: "button", class: "small", onclick: () => follow(j.id) }, "open"))));
  }
}

// ------------------------------------------------------------------ start

async function init() {
  try {
    const [models, formats] = await Promise.all([api("/api/models"), api("/api/formats")]);
    state.models = models.models; state.formats = formats.formats;
    $("#auth").hidden = true;
    renderModels(); renderFormats(); loadHistory();
  } catch (e) { $("#form-error").textContent = e.message; }
}

$("#model").addEventListener("change", renderCheckpoints);
$("#refresh").addEventListener("click", loadHistory);
$("#auth-form").addEventListener("submit", (e) => {
  e.preventDefault(); state.token = $("#token").value.trim(); sessionStorage.setItem("modelport-token", state.token);
  $("#form-error").textContent = ""; init();
});
$("#export-form").addEventListener("submit", async (e) => {
  e.preventDefault(); $("#form-error").textContent = "";
  const req = collectRequest();
  if (!req.formats.length) { $("#form-error").textContent = "pick at least one format"; return; }
  $("#export-button").disabled = true;
  try {
    const created = await api("/api/exports", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(req) });
    await follow(created.id);
  } catch (err) { $("#form-error").textContent = err.message; }
  finally { $("#export-button").disabled = false; }
});
init();
