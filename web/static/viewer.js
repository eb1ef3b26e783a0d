"use strict";
// The viewer: one search (or a deep link: /viewer?policy_no=, ?customer=, ?claim_no=), the customer's ID
// card and signature on top, then each document as a button with its type, status, names and numbers
// and date; one person's copies of a card side shown once, the others behind it.
//
// Adding a panel (e.g. a claim's): put <section id="my-panel" hidden> into #panels of viewer.html and a
// <script src="/static/my-panel.js" defer> after this one, and listen for the search:
//   document.addEventListener("viewer:search", (e) => { e.detail.kind; e.detail.number; e.detail.documents });
// window.viewer.call(path) fetches with the session and the audit reason; window.viewer.openFull(urls,
// title, doc) opens the full view (focus returns to where it was when it closes).
const $ = (id) => document.getElementById(id);
const TYPES = {
  idcard_front: "身份证正面", idcard_back: "身份证背面", signature: "签名", application_form: "投保单",
  claim_evidence: "理赔资料", epolicy: "电子保单", other: "其他",
  claim_form: "理赔申请书", medical_invoice: "医疗收费票据", bank_card: "银行卡",
};
const STAGES = {new_business: "新契约", underwriting: "核保", servicing: "保全", claims: "理赔"};
const STATES = {complete: "已完成", key_entry: "待录入", review: "待复核", rescan: "待重扫",
  superseded: "已被替代", incomplete: "未完成"};
const VALUES = {
  name: "姓名", id_number: "身份证号", application_no: "投保单号", policy_no: "保单号", claim_no: "赔案号",
  applicant_name: "投保人", applicant_id_number: "投保人证件号", insured_name: "被保险人",
  insured_id_number: "被保险人证件号", beneficiary_name: "受益人", holder_id_number: "持证人证件号",
};
const FIELDS = {name: "姓名", sex: "性别", birth_date: "出生日期", address: "联系地址", domicile: "住址", phone: "电话"};
const ID_NUMBER = /^[0-9]{17}[0-9X]$/;
const QUERY = {policy: "policy_no", customer: "customer_id", claim: "claim_no"};
let reason = "";  // the number the viewer was opened for: sent with every read, for the audit trail
let view = {urls: [], page: 0, zoom: 1, turn: 0, opener: null};
let found = [];  // the documents of the last search
const blobs = [];

async function call(path) {
  const response = await fetch(path, {credentials: "same-origin", headers: {"X-Reason": reason}});
  if (response.status === 401) location.assign("/login?next=" + encodeURIComponent(location.pathname + location.search));
  return response;
}

async function image(path) {
  const response = await call(path);
  if (!response.ok) return "";
  const url = URL.createObjectURL(await response.blob());
  blobs.push(url);
  return url;
}

// Beijing time, as staff read it: "2026-11-30 10:40"
function beijing(iso) {
  return new Date(iso).toLocaleString("sv-SE", {timeZone: "Asia/Shanghai"}).slice(0, 16);
}

// A thumbnail people reach with Tab and open with Enter: a button holding the image and its lines.
function tile(lines, thumbUrl, open) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = "doc";
  if (thumbUrl) {
    const img = document.createElement("img");
    img.alt = "";
    button.appendChild(img);
    image(thumbUrl).then((url) => { if (url) img.src = url; });
  }
  for (const [text, cls] of lines) {
    const line = document.createElement("span");
    line.textContent = text;
    if (cls) line.className = cls;
    button.appendChild(line);
  }
  button.addEventListener("click", open);
  return button;
}

function figure(label, thumbUrl, pageUrls) {
  return tile([[label, "caption"]], thumbUrl, () => openFull(pageUrls, label, null));
}

// The customer archive (客户档案): the current card and signature on top, then the information check.
function archivePanel(box, body) {
  const card = body.card;
  for (const side of ["front", "back"]) {
    const doc = card[side];
    if (doc) box.appendChild(figure(TYPES["idcard_" + side] + (card.valid === false ? "（已过期）" : ""),
                                    doc.image_url, [doc.image_url]));
  }
  if (body.signature) box.appendChild(figure(TYPES.signature, body.signature.image_url, [body.signature.image_url]));
  const check = document.createElement("ul");
  check.className = "disagreements";
  for (const d of body.disagreements) {
    const item = document.createElement("li");
    const values = Object.entries(d.values).map(([value, sources]) =>
      `${value}（${sources.map((s) => `${s.source} ${s.at.slice(0, 10)}`).join("，")}）`);
    item.textContent = `信息核对 ${FIELDS[d.field] || d.field}：${values.join(" ≠ ")}`;
    check.appendChild(item);
  }
  if (body.superseded_cards.length) {
    const item = document.createElement("li");
    item.className = "superseded";
    item.textContent = `旧证件 ${body.superseded_cards.length} 份`;
    check.appendChild(item);
  }
  if (check.children.length) box.appendChild(check);
}

async function identity(customer) {
  const box = document.createElement("div");
  box.className = "person";
  box.dataset.customer = customer;
  const name = document.createElement("h2");
  name.textContent = customer.slice(0, 6) + "********" + customer.slice(-4);
  box.appendChild(name);
  const archive = await call(`/v1/customers/${customer}`);
  if (archive.ok) {
    const body = await archive.json();
    const names = (body.facts || {}).name || [];
    if (names.length) name.textContent += " " + names[0].value;  // the masked number alone fits many people
    archivePanel(box, body);
    if (box.children.length > 1) $("identity").appendChild(box);
    return;
  }
  const [card, signature] = await Promise.all([  // documents filed before the archive was kept
    call(`/v1/customers/${customer}/idcard`), call(`/v1/customers/${customer}/signature`),
  ]);
  if (card.ok) {
    const body = await card.json();
    if (body.front && body.front.values.name) name.textContent += " " + body.front.values.name;
    for (const side of ["front", "back"]) {
      const doc = body[side];
      if (doc) box.appendChild(figure(TYPES["idcard_" + side] + (body.valid === false ? "（已过期）" : ""),
                                      doc.thumbnail_url || doc.page_urls[0], doc.page_urls));
    }
  }
  if (signature.ok) {
    const body = await signature.json();
    box.appendChild(figure(TYPES.signature, body.image_url, [body.image_url]));
  }
  if (box.children.length > 1) $("identity").appendChild(box);
}

async function fetchAll(name, value) {
  const documents = [];
  const customers = [];
  let cursor = "";
  do {
    const response = await call(`/v1/documents?${name}=${encodeURIComponent(value)}&limit=200${cursor}`);
    if (!response.ok) {
      const body = await response.json().catch(() => ({}));
      throw new Error(typeof body.detail === "string" ? body.detail : `错误 ${response.status}`);
    }
    const body = await response.json();
    documents.push(...body.documents);
    customers.push(...body.customers);
    cursor = body.next_cursor ? `&cursor=${body.next_cursor}` : "";
  } while (cursor);
  return {documents, customers};
}

async function search(text, kind = "") {
  text = text.trim().toUpperCase();
  if (!text) return;
  reason = text;
  for (const url of blobs.splice(0)) URL.revokeObjectURL(url);
  $("identity").innerHTML = ""; $("results").innerHTML = ""; $("filters").hidden = true;
  $("status").textContent = "查询中…";
  if (!kind) kind = ID_NUMBER.test(text) ? "customer" : "";
  const kinds = kind ? [kind] : ["policy", "claim"];
  const documents = new Map();
  const customers = new Set(kind === "customer" ? [text] : []);
  try {
    for (const k of kinds) {
      const body = await fetchAll(QUERY[k], text);
      for (const doc of body.documents) documents.set(doc.doc_id, doc);
      for (const c of body.customers) customers.add(c);
    }
  } catch (error) {
    $("status").textContent = error.message;
    return;
  }
  await Promise.all([...customers].map(identity));
  found = [...documents.values()].sort((a, b) => b.doc_id.localeCompare(a.doc_id));
  fillFilters();
  render();
  document.dispatchEvent(new CustomEvent("viewer:search", {detail: {kind: kind || "policy", number: text, documents: found}}));
}

function fillFilters() {
  for (const [id, names, key] of [["filter-type", TYPES, "type"], ["filter-stage", STAGES, "stage"]]) {
    const select = $(id);
    select.length = 1;
    for (const value of Object.keys(names).filter((v) => found.some((d) => d[key] === v))) {
      select.add(new Option(names[value], value));
    }
  }
  $("filters").hidden = !found.length;
}

function shown(doc) {
  const day = beijing(doc.uploaded_at).slice(0, 10);
  return (!$("filter-type").value || doc.type === $("filter-type").value)
    && (!$("filter-stage").value || doc.stage === $("filter-stage").value)
    && (!$("filter-since").value || day >= $("filter-since").value)
    && (!$("filter-until").value || day <= $("filter-until").value);
}

// One stack per document and the copies behind it: a card side of one person (its holder), or the
// earlier scans a document superseded or duplicated. The newest current one is on top.
function stacks(docs) {
  const byId = new Map(docs.map((d) => [d.doc_id, d]));
  const root = (doc) => {
    for (let seen = 0; seen < 20; seen++) {
      const later = byId.get(doc.superseded_by) || byId.get(doc.duplicate_of) || byId.get(doc.on_file);
      if (!later) break;
      doc = later;
    }
    return doc.doc_id;
  };
  const groups = new Map();
  for (const doc of docs) {
    const key = doc.holder ? `${doc.type}:${doc.holder}` : root(doc);
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push(doc);
  }
  return [...groups.values()].map((group) => {
    const top = group.find((d) => d.state !== "superseded" && !d.duplicate_of && !d.on_file) || group[0];
    return [top, ...group.filter((d) => d !== top)];
  });
}

function lines(doc) {
  const values = Object.entries(doc.values).map(([field, value]) => `${VALUES[field] || field} ${value}`);
  return [
    [STATES[doc.state] || doc.state, `state ${doc.state}`],
    ...values.map((v) => [v, "value"]),
    [`${beijing(doc.uploaded_at)} · ${STAGES[doc.stage] || doc.stage || "—"}`, "caption"],
  ];
}

async function openPdf(doc) {  // an e-policy: its signed PDF in a tab of its own
  const url = await image(doc.pdf_url);
  if (url) window.open(url, "_blank");
}

function docTile(doc) {
  const title = `${TYPES[doc.type] || doc.type} ${doc.doc_id}`;
  const button = doc.pdf_url
    ? tile([[`电子保单 PDF · ${beijing(doc.uploaded_at)}`, "caption"]], "", () => openPdf(doc))
    : tile(lines(doc), doc.thumbnail_url || doc.page_urls[0], () => openFull(doc.page_urls, title, doc));
  button.dataset.docId = doc.doc_id;
  button.dataset.state = doc.state;
  return button;
}

function render() {
  $("results").innerHTML = "";
  const docs = found.filter(shown);
  for (const type of Object.keys(TYPES).filter((t) => docs.some((d) => d.type === t))) {
    const section = document.createElement("section");
    section.dataset.type = type;
    const mine = docs.filter((d) => d.type === type);
    const heading = document.createElement("h2");
    heading.textContent = `${TYPES[type]}（${mine.length}）`;
    const list = document.createElement("div");
    list.className = "thumbs";
    for (const [top, ...behind] of stacks(mine)) {
      const stack = document.createElement("div");
      stack.className = "stack";
      stack.appendChild(docTile(top));
      if (behind.length) {
        const more = document.createElement("button");
        more.type = "button";
        more.className = "more";
        more.setAttribute("aria-expanded", "false");
        more.textContent = `另有 ${behind.length} 份`;
        const hidden = document.createElement("div");
        hidden.className = "behind";
        hidden.hidden = true;
        for (const doc of behind) hidden.appendChild(docTile(doc));
        more.addEventListener("click", () => {
          hidden.hidden = !hidden.hidden;
          more.setAttribute("aria-expanded", String(!hidden.hidden));
          more.textContent = hidden.hidden ? `另有 ${behind.length} 份` : "收起";
        });
        stack.append(more, hidden);
      }
      list.appendChild(stack);
    }
    section.append(heading, list);
    $("results").appendChild(section);
  }
  $("status").textContent = found.length ? `共 ${found.length} 份文件` : "未找到（或您无权查看）";
  $("shown").textContent = docs.length === found.length ? "" : `显示 ${docs.length} 份`;
}

async function openFull(urls, title, doc) {
  if (!urls.length) return;
  view = {urls, page: 0, zoom: 1, turn: 0, opener: document.activeElement};
  $("full-title").textContent = title;
  $("originals").innerHTML = "";
  $("full").showModal();
  $("close").focus();
  await showPage();
  if (doc && document.body.dataset.mayDownload === "yes") await offerOriginals(doc);
}

async function offerOriginals(doc) {
  const response = await call(doc.url);
  if (!response.ok) return;
  const meta = await response.json();
  meta.originals.forEach((file, i) => {
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = meta.originals.length > 1 ? `下载原件 ${i + 1}` : "下载原件";
    button.addEventListener("click", () => download(file));
    $("originals").appendChild(button);
  });
}

async function download(file) {
  const response = await call(file.url);
  if (!response.ok) {
    const body = await response.json().catch(() => ({}));
    $("status").textContent = typeof body.detail === "string" ? body.detail : `下载失败 ${response.status}`;
    return;
  }
  const link = document.createElement("a");
  link.href = URL.createObjectURL(await response.blob());
  blobs.push(link.href);
  link.download = file.name || "original";
  link.click();
}

async function showPage() {
  $("full-image").src = await image(view.urls[view.page]);
  $("full-image").alt = `${$("full-title").textContent} 第 ${view.page + 1} 页`;
  $("page-no").textContent = `${view.page + 1} / ${view.urls.length}`;
  transform();
}

function transform() {
  $("full-image").style.transform = `scale(${view.zoom}) rotate(${view.turn}deg)`;
}

function zoom(factor) { view.zoom = Math.min(8, Math.max(0.25, view.zoom * factor)); transform(); }
function rotate() { view.turn = (view.turn + 90) % 360; transform(); }
function turnPage(step) {
  const page = view.page + step;
  if (page >= 0 && page < view.urls.length) { view.page = page; view.zoom = 1; view.turn = 0; showPage(); }
}
function closeFull() { if ($("full").open) $("full").close(); }

$("zoom-in").onclick = () => zoom(1.25);
$("zoom-out").onclick = () => zoom(0.8);
$("rotate").onclick = rotate;
$("prev").onclick = () => turnPage(-1);
$("next").onclick = () => turnPage(1);
$("close").onclick = closeFull;
// Esc closes the dialog by itself; whichever way it closes, focus goes back to the thumbnail it came from.
$("full").addEventListener("close", () => { if (view.opener && view.opener.isConnected) view.opener.focus(); });
$("full").addEventListener("keydown", (event) => {
  const act = {"+": () => zoom(1.25), "=": () => zoom(1.25), "-": () => zoom(0.8), r: rotate,
               ArrowLeft: () => turnPage(-1), ArrowRight: () => turnPage(1)}[event.key];
  if (act) { event.preventDefault(); act(); }
});
for (const id of ["filter-type", "filter-stage", "filter-since", "filter-until"]) $(id).addEventListener("change", render);

$("search-form").addEventListener("submit", (event) => {
  event.preventDefault();
  search($("search").value, $("search").value === $("search").defaultValue ? $("search").dataset.kind : "");
});
window.viewer = {call, openFull};
if ($("search").value) search($("search").value, $("search").dataset.kind); else $("search").focus();
