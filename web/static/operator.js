"use strict";
// The operator page: one call to /v1/operations and one to /v1/jobs/failed every five seconds;
// requeue and discard buttons on each failed job. The admin key stays in this tab (sessionStorage).
const $ = (id) => document.getElementById(id);
let key = sessionStorage.getItem("imaging-key") || "";

async function call(path, options = {}) {
  const headers = Object.assign({"X-API-Key": key}, options.headers || {});
  return fetch(path, Object.assign({}, options, {headers}));
}

function seconds(s) {
  if (s < 90) return `${Math.round(s)} s`;
  if (s < 5400) return `${Math.round(s / 60)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}

function fill(tableId, rows) {
  const body = $(tableId).querySelector("tbody");
  body.replaceChildren();
  for (const cells of rows) {
    const tr = document.createElement("tr");
    for (const cell of cells) {
      const td = document.createElement("td");
      if (cell instanceof Node) td.appendChild(cell); else td.textContent = cell ?? "";
      if (cell && cell.error) { td.textContent = cell.text; td.className = "error"; }
      tr.appendChild(td);
    }
    body.appendChild(tr);
  }
}

function button(label, path, jobId) {
  const b = document.createElement("button");
  b.textContent = label;
  b.dataset.job = jobId;
  b.addEventListener("click", async () => {
    const response = await call(path, {
      method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify({job_ids: [jobId]}),
    });
    $("error").textContent = response.ok ? "" : `${label} ${jobId}: ${response.status}`;
    await refresh();
  });
  return b;
}

async function refresh() {
  const [ops, failed] = await Promise.all([call("/v1/operations"), call("/v1/jobs/failed")]);
  if ([ops.status, failed.status].some((s) => s === 401 || s === 403)) {
    sessionStorage.removeItem("imaging-key"); key = "";
    $("board").hidden = true; $("login").hidden = false; $("key").focus(); return false;
  }
  const o = await ops.json();
  fill("queues", o.queues.map((q) => [q.name, q.depth, q.depth ? seconds(q.oldest_seconds) : "", q.failed]));
  fill("workers", o.workers.map((w) => [w.name, w.state, w.current_job, w.last_heartbeat]));
  $("backlog").textContent = o.keyentry_backlog;
  $("oldest-task").textContent = o.keyentry_backlog ? seconds(o.keyentry_oldest_seconds) : "–";
  $("accepted").textContent = o.fields_accepted_today;
  $("keyed").textContent = o.fields_keyed_today;
  $("rate").textContent = o.straight_through_today === null ? "–" : `${(o.straight_through_today * 100).toFixed(1)} %`;
  fill("scans", o.recent_scans.map((s) => [s.scan_id, s.mode, s.error ? `${s.status}: ${s.error}` : s.status,
    s.uploaded_at, s.pages, s.documents]));
  const jobs = await failed.json();
  fill("failed", jobs.map((j) => {
    const actions = document.createElement("span");
    actions.append(button("requeue", "/v1/jobs/requeue", j.job_id), button("discard", "/v1/jobs/discard", j.job_id));
    return [j.job_id, j.queue, j.ended_at, {error: true, text: j.error}, actions];
  }));
  $("updated").textContent = `updated ${new Date().toLocaleTimeString()}`;
  $("login").hidden = true; $("board").hidden = false;
  return true;
}

$("login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  key = $("key").value.trim();
  sessionStorage.setItem("imaging-key", key);
  await loop();
});

async function loop() {
  if (key && await refresh()) setTimeout(loop, 5000);
  else if (!key) { $("login").hidden = false; $("key").focus(); }
}
loop();
