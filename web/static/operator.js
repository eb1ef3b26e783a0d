"use strict";
// The operator page: one call each to /v1/operations, /v1/jobs/failed and /v1/events every five seconds;
// requeue and discard buttons on each failed job, a replay button on each webhook delivery. The person signed in calls the API with the session
// cookie, and every POST carries the page's CSRF token. Those routes are for admins: anyone else sees
// the API's refusal, in words.
const $ = (id) => document.getElementById(id);
const csrf = document.querySelector('meta[name="csrf-token"]').content;

async function call(path, options = {}) {
  const headers = Object.assign({"X-CSRF-Token": csrf}, options.headers || {});
  const response = await fetch(path, Object.assign({credentials: "same-origin"}, options, {headers}));
  if (response.status === 401) location.assign("/login?next=" + encodeURIComponent(location.pathname));
  return response;
}

async function detail(response) {
  try {
    const body = await response.json();
    if (typeof body.detail === "string") return body.detail;
    return JSON.stringify(body.detail ?? body);
  } catch {
    return response.statusText;
  }
}

async function refuse(response) {
  const person = $("person").textContent;
  $("refused").textContent = `${person} may not use the operator page (admins only): ${await detail(response)}`;
  $("board").hidden = true; $("refused").hidden = false;
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
    if (response.status === 403) { await refuse(response); return; }
    $("error").textContent = response.ok ? "" : `${label} ${jobId}: ${response.status} ${await detail(response)}`;
    await refresh();
  });
  return b;
}

function replayButton(eventId, n) {
  const b = document.createElement("button");
  b.textContent = "replay";
  b.dataset.event = eventId;
  b.dataset.delivery = n;
  b.addEventListener("click", async () => {
    const path = `/v1/events/${encodeURIComponent(eventId)}/replay?delivery=${n}`;
    const response = await call(path, {method: "POST"});
    if (response.status === 403) { await refuse(response); return; }
    $("error").textContent = response.ok ? "" : `replay ${eventId}: ${response.status} ${await detail(response)}`;
    await refresh();
  });
  return b;
}

function attempts(delivery) {
  const tries = delivery.attempts.map((a) => a.status ?? "no answer");
  return `${tries.length}${tries.length ? ": " + tries.join(", ") : ""}` +
    (delivery.replays ? ` (replayed ${delivery.replays})` : "");
}

async function refresh() {
  const answers = await Promise.all([call("/v1/operations"), call("/v1/jobs/failed"), call("/v1/events?limit=20")]);
  const [ops, failed, events] = answers;
  if (answers.some((r) => r.status === 401)) return false;  // on the way to /login
  const refusal = answers.find((r) => r.status === 403);
  if (refusal) { await refuse(refusal); return false; }
  const trouble = answers.find((r) => !r.ok);
  if (trouble) {  // Redis away (503), say: shown, and tried again at the next round
    $("error").textContent = `${new URL(trouble.url).pathname}: ${trouble.status} ${await detail(trouble)}`;
    $("board").hidden = false;
    return true;
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
  fill("events", (await events.json()).flatMap((e) => e.deliveries.map((d, n) => [
    e.event_id, e.created_at, d.url, d.state === "failed" ? {error: true, text: d.state} : d.state,
    attempts(d), replayButton(e.event_id, n)])));
  $("updated").textContent = `updated ${new Date().toLocaleTimeString()}`;
  $("refused").hidden = true; $("board").hidden = false;
  return true;
}

async function loop() {
  let again = true;
  try {
    again = await refresh();
  } catch (err) {  // the service unreachable for a moment: said, and tried again
    $("error").textContent = `no answer from the service: ${err.message}`;
  }
  if (again) setTimeout(loop, 5000);
}
loop();
