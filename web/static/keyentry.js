"use strict";
const $ = (id) => document.getElementById(id);
const csrf = document.querySelector('meta[name="csrf-token"]').content;
const ROUNDS = {single: "", blind: "双录（盲录）", arbitration: "仲裁"};
const TYPES = {application_form: "投保单", idcard_front: "身份证正面", idcard_back: "身份证背面",
  claim_evidence: "理赔资料", signature: "签名", other: "其他"};
const KINDS = {name: "姓名", id_number: "身份证号码", date: "日期，如 19870315", phone: "电话",
  amount: "金额", integer: "整数", sex: "男或女", code: "编号", address: "地址", choice: "选项", text: "文字"};
let task = null;
const urls = {image: null, strip: null};

async function call(path, options = {}) {
  const headers = Object.assign({"X-CSRF-Token": csrf}, options.headers || {});
  const response = await fetch(path, Object.assign({credentials: "same-origin"}, options, {headers}));
  if (response.status === 401) location.assign("/login?next=" + encodeURIComponent(location.pathname));
  return response;
}

function show(section) {
  for (const id of ["empty", "work"]) $(id).hidden = id !== section;
}

// Put an image fetched with the session into an <img>; false when there is none (404).
async function load(name, path) {
  if (urls[name]) URL.revokeObjectURL(urls[name]);
  urls[name] = null;
  $(name).removeAttribute("src");
  const response = await call(path);
  if (!response.ok) return false;
  urls[name] = URL.createObjectURL(await response.blob());
  $(name).src = urls[name];
  return true;
}

async function today() {
  const response = await call("/v1/keyentry/today");
  if (!response.ok) return;
  const body = await response.json();
  $("today-count").textContent = body.answers;
  $("today-rate").textContent = body.per_hour === null ? "–" : body.per_hour;
}

// Nothing to key: nothing of the last task stays on the screen, and the counts say who has the rest.
function empty(body) {
  task = null;
  for (const name of ["image", "strip"]) {
    if (urls[name]) URL.revokeObjectURL(urls[name]);
    urls[name] = null;
    $(name).removeAttribute("src");
  }
  $("label").textContent = ""; $("doc").textContent = ""; $("round").textContent = "";
  $("empty-others").textContent = body.others
    ? `另有 ${body.others} 个字段等待其他录入员（正在录入，或双录须由另一人完成）。` : "";
  show("empty");
  setTimeout(next, 3000);
}

async function next() {
  const response = await call("/v1/keyentry/next");
  if (response.status === 403) {
    show("work"); $("error").textContent = (await response.json()).detail; return;
  }
  const body = await response.json();
  $("yours").textContent = body.yours;
  $("others").textContent = body.others;
  if (!body.task) { empty(body); return; }
  task = body.task;
  $("label").textContent = task.label;
  $("value-label").textContent = `${task.label}（${KINDS[task.kind] || task.kind}）`;
  $("round").textContent = ROUNDS[task.round];
  $("round").hidden = !ROUNDS[task.round];
  $("doc").textContent = `${TYPES[task.document_type] || task.document_type} ${task.doc_id}`;
  $("image").alt = `字段图像：${task.label}`;
  $("strip").alt = `${task.label}所在的一段页面，字段用红框标出`;
  const arbitration = task.round === "arbitration";
  $("choices").hidden = !arbitration;
  task.values.forEach((v, i) => {
    $(`choice-${i + 1}`).textContent = `${i + 1}　${v}`;
    $(`choice-${i + 1}`).dataset.value = v;
  });
  const ticks = options();
  $("reasons").textContent = task.reasons_zh.length ? `转人工原因：${task.reasons_zh.join("；")}` : "";
  const blank = (task.answers || []).includes("blank");
  $("blank").disabled = !blank;
  $("blank").title = blank ? "表单允许此字段留空" : "此字段不可留空";
  $("error").textContent = "";
  $("value").value = task.round === "blind" || arbitration ? "" : (task.suggestion || "");
  show("work");
  if (ticks) { ticks.focus(); } else if (arbitration) { $("choice-1").focus(); }
  else { $("value").focus(); $("value").select(); }
  const [, strip] = await Promise.all([load("image", task.image_url), load("strip", task.strip_url)]);
  $("strip-box").hidden = !strip;
}

// A choice field (tick boxes): its options as buttons, keys 1..n pick one, in place of the text box.
// Returns the button to focus (OCR's suggestion, else the first), or null for a field typed in.
function options() {
  const choices = task.choices || [];
  const box = $("option-buttons");
  box.replaceChildren();
  $("options").hidden = !choices.length;
  $("typed").hidden = choices.length > 0;
  if (!choices.length) return null;
  $("choices").hidden = true;  // an arbitration of a choice field is answered by its options too
  let focus = null;
  choices.forEach((label, i) => {
    const button = document.createElement("button");
    button.type = "button";
    button.id = `option-${i + 1}`;
    button.textContent = `${i + 1}　${label}`;
    button.dataset.value = label;
    button.addEventListener("click", () => send("value", label));
    if (label === task.suggestion) { button.classList.add("suggested"); focus = button; }
    box.append(button);
  });
  return focus || box.firstElementChild;
}

// answer: "value" (what is typed or chosen), "blank" (the form leaves the field empty) or "illegible"
// (nobody can read it: the document asks for a rescan).
async function send(answer, value = $("value").value) {
  if (!task) return;
  const response = await call(`/v1/keyentry/${encodeURIComponent(task.task_id)}`, {
    method: "POST", headers: {"Content-Type": "application/json"},
    body: JSON.stringify({value: answer === "value" ? value : "", answer}),
  });
  if (response.status === 422) {
    const body = await response.json();
    $("error").textContent = "不是有效的值：" + (typeof body.detail === "string" ? body.detail : "");
    if (!(task.choices || []).length) $("value").focus();
    return;
  }
  if (response.status === 409) $("error").textContent = "此字段已不再由您录入（超时或已撤回），已换下一个字段";
  today();
  await next();
}

$("entry").addEventListener("submit", (event) => { event.preventDefault(); send("value"); });
$("blank").addEventListener("click", () => send("blank"));
$("illegible").addEventListener("click", () => send("illegible"));
for (const id of ["choice-1", "choice-2"]) {
  $(id).addEventListener("click", () => send("value", $(id).dataset.value));
}
document.addEventListener("keydown", (event) => {
  if (!task) return;
  if (event.key === "F2" && !$("blank").disabled) { event.preventDefault(); send("blank"); }
  if (event.key === "F4") { event.preventDefault(); send("illegible"); }
  // 1..n pick a choice field's option
  const n = Number(event.key);
  if ((task.choices || []).length && Number.isInteger(n) && n >= 1 && n <= task.choices.length) {
    event.preventDefault(); send("value", task.choices[n - 1]); return;
  }
  // 1 and 2 pick a keyer's value in arbitration, except while typing a value of one's own
  const choice = {"1": "choice-1", "2": "choice-2"}[event.key];
  if (choice && task.round === "arbitration" && document.activeElement !== $("value")) {
    event.preventDefault(); send("value", $(choice).dataset.value);
  }
});

$("value").addEventListener("keydown", (event) => {
  if (event.key === "Escape") { $("value").value = ""; }
});

today();
next();
