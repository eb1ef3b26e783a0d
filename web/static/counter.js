"use strict";
// The counter page: pages added (file picker or drag and drop), put in order, sent as one scan; then the
// scan followed until read, and the answer shown in Chinese with the pages to scan again marked.
const $ = (id) => document.getElementById(id);
const csrf = document.querySelector('meta[name="csrf-token"]').content;
// The first bytes of what the service reads (media.py): a file that is none of them is not added.
const MAGIC = [
  [[0xff, 0xd8, 0xff], "image/jpeg"], [[0x89, 0x50, 0x4e, 0x47], "image/png"],
  [[0x49, 0x49, 0x2a, 0x00], "image/tiff"], [[0x4d, 0x4d, 0x00, 0x2a], "image/tiff"],
  [[0x25, 0x50, 0x44, 0x46, 0x2d], "application/pdf"],
];
const SHOWN = new Set(["image/jpeg", "image/png"]);  // what an <img> shows; TIFF and PDF get their name
const WAIT_MS = 120000, POLL_MS = 500;
const STATES = {queued: "排队中", processing: "识别中"};
let pages = [];  // {file, type, url}, in the order they will be sent
let sent = [];   // the pages of the scan shown in the answer
let following = 0;  // which sending the poll belongs to: a new customer stops the old one's
let busy = false;  // the page is sending or following its own scan: the station's feed waits
let known = null;  // scan ids already listed: a new one the page did not send came from the scanner's folder
let shownId = null;  // the scan whose answer is shown
const FEED_MS = 3000;

async function call(path, options = {}) {
  const headers = Object.assign({"X-CSRF-Token": csrf}, options.headers || {});
  const response = await fetch(path, Object.assign({credentials: "same-origin"}, options, {headers}));
  if (response.status === 401) location.assign("/login?next=" + encodeURIComponent(location.pathname));
  return response;
}

async function kind(file) {
  const head = new Uint8Array(await file.slice(0, 1024).arrayBuffer());
  for (const [magic, type] of MAGIC) if (magic.every((b, i) => head[i] === b)) return type;
  return new TextDecoder("latin1").decode(head).includes("%PDF-") ? "application/pdf" : null;
}

async function addFiles(list) {
  const refused = [];
  for (const file of list) {
    const type = file.size ? await kind(file) : null;
    if (!file.size) refused.push(`${file.name}：空文件，未加入`);
    else if (!type) refused.push(`${file.name}：不是扫描件（可发送 JPEG、PNG、TIFF、PDF），未加入`);
    else pages.push({file, type, url: SHOWN.has(type) ? URL.createObjectURL(file) : null});
  }
  $("add-message").textContent = refused.join("；");
  $("files").value = "";
  renderPages();
}

function picture(page, alt) {
  if (page.url) {
    const img = document.createElement("img");
    img.src = page.url; img.alt = alt;
    return img;
  }
  const box = document.createElement("div");
  box.className = "no-preview"; box.setAttribute("role", "img"); box.setAttribute("aria-label", alt);
  box.textContent = page.type === "application/pdf" ? "PDF" : "TIFF";
  return box;
}

function renderPages(focus) {
  const list = $("pages");
  list.replaceChildren();
  pages.forEach((page, i) => {
    const item = document.createElement("li");
    const name = document.createElement("span");
    name.textContent = `${i + 1}. ${page.file.name}`;
    item.append(picture(page, `第${i + 1}个文件 ${page.file.name}`), name);
    const buttons = [["上移", () => move(i, -1), i === 0], ["下移", () => move(i, 1), i === pages.length - 1],
                     ["移除", () => remove(i), false]];
    for (const [text, action, off] of buttons) {
      const button = document.createElement("button");
      button.type = "button"; button.textContent = text; button.dataset.action = text;
      button.setAttribute("aria-label", `${text} ${page.file.name}`);
      button.disabled = off;
      button.addEventListener("click", action);
      item.append(button);
    }
    list.append(item);
  });
  if (focus) {  // keep the keyboard where it was: the same button of the page moved, else its first one
    const item = list.children[focus.index];
    const target = item && (item.querySelector(`button[data-action="${focus.action}"]:not(:disabled)`) ||
                            item.querySelector("button:not(:disabled)"));
    (target || $("files")).focus();
  }
}

function move(i, step) {
  [pages[i], pages[i + step]] = [pages[i + step], pages[i]];
  renderPages({index: i + step, action: step < 0 ? "上移" : "下移"});
}

function remove(i) {
  const [gone] = pages.splice(i, 1);
  if (gone.url && !sent.includes(gone)) URL.revokeObjectURL(gone.url);
  renderPages({index: Math.min(i, pages.length - 1), action: "移除"});
}

function status(text) { $("status").textContent = text; }

async function detail(response) {
  try {
    const body = await response.json();
    return typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail);
  } catch (e) { return ""; }
}

function refusal(code, why) {
  const words = {
    403: "您的账号无权上传扫描", 413: "文件太大，超过上传上限，请分批发送",
    415: "有文件不是可识别的扫描件", 422: "号码或文件有误", 503: "服务暂不可用，请稍后重试",
  };
  return `发送失败：${words[code] || `服务拒绝（${code}）`}${why ? `（${why}）` : ""}`;
}

async function send(event) {
  event.preventDefault();
  if (!pages.length) { status("请先添加页面"); $("files").focus(); return; }
  const form = new FormData();
  for (const page of pages) form.append("file", page.file, page.file.name);
  form.append("mode", document.querySelector('input[name="mode"]:checked').value);
  for (const name of ["policy_no", "claim_no", "customer_id"]) {
    const value = $(name).value.trim();
    if (value) form.append(name, value);
  }
  clearAnswer();
  status("正在上传…");
  $("send").disabled = true;
  busy = true;
  const mine = ++following;
  try {
    const response = await call("/v1/scans", {method: "POST", body: form});
    if (!response.ok) { status(refusal(response.status, await detail(response))); return; }
    const accepted = await response.json();
    if (known) known.add(accepted.scan_id);
    sent = pages.slice();
    await follow(accepted, mine);
  } catch (e) {
    status("无法连接服务，请检查网络后重试");
  } finally {
    $("send").disabled = false;
    busy = false;
  }
}

async function follow(accepted, mine) {
  const deadline = Date.now() + WAIT_MS;
  while (Date.now() < deadline && mine === following) {
    const response = await call(accepted.status_url);
    if (response.ok) {
      const view = await response.json();
      if (view.status === "captured" || view.status === "failed") { show(view, accepted.existing); return; }
      status(`扫描 ${view.scan_id}：${STATES[view.status] || view.status}…`);
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
  if (mine === following) status("两分钟内未识别完，请稍后在影像调阅中查看");
}

function masked(name, value) {
  return name.includes("id_number") && value && value.length > 10
    ? value.slice(0, 6) + "*".repeat(value.length - 10) + value.slice(-4) : value;
}

function show(view, existing) {
  shownId = view.scan_id;
  if (view.status === "failed") { status(`扫描 ${view.scan_id} 无法识别：${view.error || ""}`); return; }
  // A page to scan again is neither read nor keyed: its fields count nowhere.
  const fields = view.documents.filter((d) => d.status !== "exception").flatMap((d) => Object.values(d.fields));
  const accepted = fields.filter((f) => f.status === "accepted" || f.status === "keyed").length;
  const keying = fields.filter((f) => f.status === "key_entry").length;
  // What to scan again: the documents' rescan requests, pages refused and card-shaped regions passed over.
  const again = [...view.rescans, ...(view.left_out || []).filter((p) => p.rescan)];
  const pages = new Set(again.map((r) => r.page));
  status(`扫描 ${view.scan_id} 已识别${existing ? "（这些页面已发送过，以下是当时的结果）" : ""}：` +
    `${view.documents.length} 份文档，${accepted} 个字段已识别，${keying} 个字段送人工录入` +
    (pages.size ? `，${pages.size} 页需重新扫描` : ""));
  for (const rescan of view.rescans) {
    const item = document.createElement("li");
    item.textContent = rescan.zh;
    $("rescans").append(item);
  }
  for (const page of view.left_out || []) {  // every page that became no document, and why
    const item = document.createElement("li");
    item.className = page.rescan ? "rescan" : "skipped";
    item.textContent = page.zh;
    $("left-out").append(item);
  }
  for (const notice of view.notices || []) {
    const item = document.createElement("li");
    item.className = "notice";
    item.textContent = notice;
    $("rescans").append(item);
  }
  if (sent.length) {  // its own files only
    for (const page of [...pages].sort((a, b) => a - b)) $("marked").append(markedPage(view, again, page));
  }
  view.documents.forEach((document_, i) => $("documents").append(documentPanel(document_, i + 1)));
}

function documentPanel(doc, number) {
  const section = document.createElement("section");
  section.className = doc.status === "exception" ? "document rescan" : "document";
  const title = document.createElement("h3");
  const state = doc.status === "exception" ? " · 需重新扫描" : doc.on_file ? " · 已在档" : "";
  title.textContent = `${number}. ${doc.label}（第${doc.pages.join("、")}页）${state}`;
  const list = document.createElement("ul");
  if (doc.status === "exception") {
    const item = document.createElement("li");
    item.textContent = "字段未识别：重新扫描后再识别";
    list.append(item);
  }
  for (const [name, field] of Object.entries(doc.fields)) {
    if (doc.status === "exception") break;  // a page to scan again: its fields are not read
    const item = document.createElement("li");
    if (field.status === "accepted" || field.status === "keyed") {
      item.className = "read"; item.textContent = `✓ ${field.label}：${masked(name, field.value)}`;
    } else if (field.status === "key_entry") {
      item.className = "keying"; item.textContent = `→ ${field.label}：送人工录入`;
    } else {
      item.className = "keying"; item.textContent = `${field.label}：${field.status || "未识别"}`;
    }
    list.append(item);
  }
  section.append(title, list);
  return section;
}

function fileOf(view, page) {
  // The scan's pages run on across its files: find the file (and its own page) that holds this one.
  let first = 1;
  for (let i = 0; i < view.files.length; i++) {
    const count = view.files[i].pages || 1;
    if (page < first + count) return {index: i, own: page - first + 1};
    first += count;
  }
  return {index: view.files.length - 1, own: 1};
}

function markedPage(view, again, page) {
  const requests = again.filter((r) => r.page === page);
  const {index, own} = fileOf(view, page);
  const local = sent[index];
  const figure = document.createElement("figure");
  const frame = document.createElement("div");
  frame.className = "frame";
  const words = requests.map((r) => r.zh).join("；");
  const where = local ? `${local.file.name}${own > 1 ? ` 第${own}页` : ""}` : "";
  frame.append(local ? picture(local, `第${page}页 ${where}：${words}`) : document.createElement("div"));
  const marked = requests.filter((r) => r.box);
  if (!marked.length || !local || !local.url || own > 1) frame.classList.add("whole");
  else {
    const img = frame.querySelector("img");
    const place = () => {
      for (const request of marked) {
        const [x, y, w, h] = request.box;
        const mark = document.createElement("div");
        mark.className = request.outcome === "passed_over" ? "mark passed" : "mark";
        mark.style.left = `${(100 * x) / img.naturalWidth}%`;
        mark.style.top = `${(100 * y) / img.naturalHeight}%`;
        mark.style.width = `${(100 * w) / img.naturalWidth}%`;
        mark.style.height = `${(100 * h) / img.naturalHeight}%`;
        frame.append(mark);
      }
    };
    if (img.complete && img.naturalWidth) place(); else img.addEventListener("load", place);
  }
  const caption = document.createElement("figcaption");
  caption.textContent = `第${page}页${where ? `（${where}）` : ""}：${words}`;
  figure.append(frame, caption);
  return figure;
}

function clearAnswer() {
  for (const id of ["rescans", "left-out", "documents", "marked"]) $(id).replaceChildren();
}

function nextCustomer() {
  following++;
  for (const page of [...pages, ...sent]) if (page.url) URL.revokeObjectURL(page.url);
  pages = []; sent = [];
  for (const name of ["policy_no", "claim_no", "customer_id"]) $(name).value = "";
  $("add-message").textContent = "";
  clearAnswer();
  renderPages();
  status("添加页面后点“发送扫描”。");
  $("policy_no").focus();
}

// The station's feed: the person's latest scans, polled; one the page did not send (the scanner's folder,
// through `imaging scan --watch` with the person's token) is followed and shown when the page is idle.
async function feed() {
  try {
    const response = await call("/v1/scans");
    if (response.ok) {
      const scans = (await response.json()).scans;
      const fresh = known === null ? [] : scans.filter((s) => !known.has(s.scan_id));
      known = new Set([...(known || []), ...scans.map((s) => s.scan_id)]);
      renderRecent(scans);
      if (fresh.length && !busy) showScan(fresh[0], "扫描仪文件夹送来新扫描");
    }
  } catch (e) { /* the network is away a moment: the next look finds it */ }
  setTimeout(feed, FEED_MS);
}

function renderRecent(scans) {
  const list = $("recent");
  list.replaceChildren();
  for (const scan of scans) {
    const item = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    const time = new Date(scan.uploaded_at).toLocaleTimeString("zh-CN", {hour12: false});
    const names = scan.files.filter(Boolean);
    const what = names.length > 1 ? `${names[0]} 等${names.length}个文件` : (names[0] || "");
    const state = {queued: "排队中", processing: "识别中", captured: "已识别", failed: "无法识别"}[scan.status];
    button.textContent = `${time} ${what} · ${state || scan.status}`;
    button.setAttribute("aria-label", `查看扫描 ${scan.scan_id}：${button.textContent}`);
    button.addEventListener("click", () => showScan(scan, ""));
    item.append(button);
    list.append(item);
  }
}

async function showScan(scan, why) {
  if (scan.scan_id !== shownId) sent = [];  // not the page's own: no local files to mark
  clearAnswer();
  if (why) status(`${why}：${scan.scan_id}`);
  await follow(scan, ++following);
}

$("files").addEventListener("change", () => addFiles([...$("files").files]));
$("scan").addEventListener("submit", send);
$("next-customer").addEventListener("click", nextCustomer);
for (const type of ["dragenter", "dragover"]) {
  $("scan").addEventListener(type, (event) => { event.preventDefault(); $("drop").classList.add("over"); });
}
$("scan").addEventListener("dragleave", () => $("drop").classList.remove("over"));
$("scan").addEventListener("drop", (event) => {
  event.preventDefault();
  $("drop").classList.remove("over");
  addFiles([...event.dataTransfer.files]);
});
feed();
