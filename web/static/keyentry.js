"use strict";
const $ = (id) => document.getElementById(id);
const csrf = document.querySelector('meta[name="csrf-token"]').content;
let task = null;
let imageUrl = null;

async function call(path, options = {}) {
  const headers = Object.assign({"X-CSRF-Token": csrf}, options.headers || {});
  const response = await fetch(path, Object.assign({credentials: "same-origin"}, options, {headers}));
  if (response.status === 401) location.assign("/login?next=" + encodeURIComponent(location.pathname));
  return response;
}

function show(section) {
  for (const id of ["empty", "work"]) $(id).hidden = id !== section;
}

async function next() {
  const response = await call("/v1/keyentry/next");
  if (response.status === 403) {
    $("error").textContent = (await response.json()).detail; show("work"); return;
  }
  const body = await response.json();
  $("waiting").textContent = body.waiting;
  task = body.task;
  if (!task) { show("empty"); setTimeout(next, 3000); return; }
  const image = await call(task.image_url);
  if (imageUrl) URL.revokeObjectURL(imageUrl);
  imageUrl = URL.createObjectURL(await image.blob());
  $("image").src = imageUrl;
  $("label").textContent = `${task.label} (${task.kind})`;
  $("round").textContent = {single: "", blind: "blind double entry 双录", arbitration: "arbitration 仲裁"}[task.round];
  $("doc").textContent = `${task.document_type} ${task.doc_id}`;
  $("values").innerHTML = "";
  for (const v of task.values) {
    const span = document.createElement("span"); span.textContent = v; $("values").appendChild(span);
  }
  $("reasons").textContent = task.reasons.join("; ");
  $("blank").hidden = !(task.answers || []).includes("blank");
  $("error").textContent = "";
  $("value").value = task.round === "blind" ? "" : (task.suggestion || "");
  show("work");
  $("value").focus(); $("value").select();
}

// answer: "value" (what is typed), "blank" (the form leaves the field empty) or "illegible" (nobody can
// read it: the document asks for a rescan).
async function send(answer) {
  if (!task) return;
  const response = await call(`/v1/keyentry/${encodeURIComponent(task.task_id)}`, {
    method: "POST", headers: {"Content-Type": "application/json"},
    body: JSON.stringify({value: answer === "value" ? $("value").value : "", answer}),
  });
  if (response.status === 422) {
    const body = await response.json();
    $("error").textContent = typeof body.detail === "string" ? body.detail : "not a valid value";
    $("value").focus(); return;
  }
  if (response.status === 409) $("error").textContent = "lease ran out; taking the next field";
  await next();
}

$("entry").addEventListener("submit", (event) => { event.preventDefault(); send("value"); });
$("blank").addEventListener("click", () => send("blank"));
$("illegible").addEventListener("click", () => send("illegible"));
document.addEventListener("keydown", (event) => {
  if (event.key === "F2" && !$("blank").hidden) { event.preventDefault(); send("blank"); }
  if (event.key === "F4") { event.preventDefault(); send("illegible"); }
});

$("value").addEventListener("keydown", (event) => {
  if (event.key === "Escape") { $("value").value = ""; }
});

next();
