"use strict";
const $ = (id) => document.getElementById(id);
const TYPES = {
  idcard_front: "身份证正面 ID card front", idcard_back: "身份证背面 ID card back",
  signature: "签名 signature", application_form: "投保单 application form",
  claim_evidence: "理赔资料 claim evidence", epolicy: "电子保单 e-policy", other: "其他 other",
  claim_form: "理赔申请书 claim form", medical_invoice: "医疗收费票据 medical invoice", bank_card: "银行卡 bank card",
};
const ID_NUMBER = /^[0-9]{17}[0-9X]$/;
let reason = "";  // the number the viewer was opened for: sent with every read, for the audit trail
let view = {urls: [], page: 0, zoom: 1, turn: 0, title: ""};
const blobs = [];

async function call(path) {
  const response = await fetch(path, {credentials: "same-origin", headers: {"X-Reason": reason}});
  if (response.status === 401) location.assign("/login?next=" + encodeURIComponent(location.pathname));
  return response;
}

async function image(path) {
  const response = await call(path);
  if (!response.ok) return "";
  const url = URL.createObjectURL(await response.blob());
  blobs.push(url);
  return url;
}

function figure(label, thumbUrl, pageUrls, title) {
  const fig = document.createElement("figure");
  const img = document.createElement("img");
  img.alt = label;
  const caption = document.createElement("figcaption");
  caption.textContent = label;
  fig.append(img, caption);
  image(thumbUrl).then((url) => { img.src = url; });
  fig.addEventListener("click", () => openFull(pageUrls, title || label));
  return fig;
}

const FIELDS = {name: "姓名 name", sex: "性别 sex", birth_date: "出生日期 birth date",
  address: "联系地址 address", domicile: "住址 domicile", phone: "电话 phone"};

// The customer archive (客户档案): the current card and signature on top, then the information check.
function archivePanel(box, body) {
  const card = body.card;
  for (const side of ["front", "back"]) {
    const doc = card[side];
    if (doc) box.appendChild(figure(TYPES["idcard_" + side] + (card.valid === false ? " (expired 已过期)" : ""),
                                    doc.image_url, [doc.image_url]));
  }
  if (body.signature) box.appendChild(figure(TYPES.signature, body.signature.image_url, [body.signature.image_url]));
  const check = document.createElement("ul");
  check.className = "disagreements";
  for (const d of body.disagreements) {
    const item = document.createElement("li");
    const values = Object.entries(d.values).map(([value, sources]) =>
      `${value} (${sources.map((s) => `${s.source} ${s.at.slice(0, 10)}`).join(", ")})`);
    item.textContent = `信息核对 ${FIELDS[d.field] || d.field}: ${values.join(" ≠ ")}`;
    check.appendChild(item);
  }
  if (body.superseded_cards.length) {
    const item = document.createElement("li");
    item.className = "superseded";
    item.textContent = `${body.superseded_cards.length} superseded card side(s) 旧证件`;
    check.appendChild(item);
  }
  if (check.children.length) box.appendChild(check);
}

async function identity(customer) {
  const box = document.createElement("div");
  box.className = "person";
  box.dataset.customer = customer;
  const name = document.createElement("h3");
  name.textContent = customer.slice(0, 6) + "********" + customer.slice(-4);
  box.appendChild(name);
  const archive = await call(`/v1/customers/${customer}`);
  if (archive.ok) {
    archivePanel(box, await archive.json());
    if (box.children.length > 1) $("identity").appendChild(box);
    return;
  }
  const [card, signature] = await Promise.all([  // documents filed before the archive was kept
    call(`/v1/customers/${customer}/idcard`), call(`/v1/customers/${customer}/signature`),
  ]);
  if (card.ok) {
    const body = await card.json();
    for (const side of ["front", "back"]) {
      const doc = body[side];
      if (doc) box.appendChild(figure(TYPES["idcard_" + side] + (body.valid === false ? " (expired 已过期)" : ""),
                                      doc.thumbnail_url || doc.page_urls[0], doc.page_urls));
    }
  }
  if (signature.ok) {
    const body = await signature.json();
    box.appendChild(figure(TYPES.signature, body.image_url, [body.image_url]));
  }
  if (box.children.length > 1) $("identity").appendChild(box);
}

async function search(text) {
  text = text.trim().toUpperCase();
  if (!text) return;
  reason = text;
  for (const url of blobs.splice(0)) URL.revokeObjectURL(url);
  $("identity").innerHTML = ""; $("results").innerHTML = "";
  $("status").textContent = "searching…";
  const params = ID_NUMBER.test(text) ? [["customer_id", text]] : [["policy_no", text], ["claim_no", text]];
  const documents = new Map();
  const customers = new Set(ID_NUMBER.test(text) ? [text] : []);
  for (const [name, value] of params) {
    let cursor = "";
    do {
      const response = await call(`/v1/documents?${name}=${encodeURIComponent(value)}&limit=200${cursor}`);
      if (!response.ok) {
        const body = await response.json().catch(() => ({}));
        $("status").textContent = typeof body.detail === "string" ? body.detail : `error ${response.status}`;
        return;
      }
      const body = await response.json();
      for (const doc of body.documents) documents.set(doc.doc_id, doc);
      for (const c of body.customers) customers.add(c);
      cursor = body.next_cursor ? `&cursor=${body.next_cursor}` : "";
    } while (cursor);
  }
  await Promise.all([...customers].map(identity));
  const groups = {};
  for (const doc of [...documents.values()].sort((a, b) => b.doc_id.localeCompare(a.doc_id))) {
    (groups[doc.type] = groups[doc.type] || []).push(doc);
  }
  for (const type of Object.keys(TYPES).filter((t) => groups[t])) {
    const section = document.createElement("section");
    section.dataset.type = type;
    const heading = document.createElement("h2");
    heading.textContent = `${TYPES[type]} (${groups[type].length})`;
    const thumbs = document.createElement("div");
    thumbs.className = "thumbs";
    for (const doc of groups[type]) {
      const when = doc.uploaded_at.slice(0, 16).replace("T", " ");
      if (doc.pdf_url) {  // an e-policy: open its signed PDF
        const link = document.createElement("a");
        link.href = "#"; link.textContent = `${when} PDF`; link.dataset.docId = doc.doc_id;
        link.addEventListener("click", async (event) => {
          event.preventDefault();
          const url = await image(doc.pdf_url);
          if (url) window.open(url, "_blank");
        });
        thumbs.appendChild(link);
        continue;
      }
      const marks = [doc.rescan ? "待重扫 rescan" : "", doc.superseded_by ? "已替代 superseded" : "",
                     doc.duplicate_of ? "重复 duplicate" : ""].filter(Boolean);
      const fig = figure([`${when} · ${doc.stage}`, ...marks].join(" · "), doc.thumbnail_url || doc.page_urls[0],
                         doc.page_urls, `${TYPES[type]} ${doc.doc_id}`);
      fig.dataset.docId = doc.doc_id;
      if (marks.length) fig.classList.add("marked");
      thumbs.appendChild(fig);
    }
    section.append(heading, thumbs);
    $("results").appendChild(section);
  }
  $("status").textContent = documents.size ? `${documents.size} document(s)`
    : "nothing found 未找到 (or nothing you may see)";
}

async function openFull(urls, title) {
  view = {urls, page: 0, zoom: 1, turn: 0, title};
  $("full").hidden = false;
  await showPage();
}

async function showPage() {
  $("full-image").src = await image(view.urls[view.page]);
  $("page-no").textContent = `${view.page + 1} / ${view.urls.length}`;
  $("full-title").textContent = view.title;
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
function closeFull() { $("full").hidden = true; }

$("zoom-in").onclick = () => zoom(1.25);
$("zoom-out").onclick = () => zoom(0.8);
$("rotate").onclick = rotate;
$("prev").onclick = () => turnPage(-1);
$("next").onclick = () => turnPage(1);
$("close").onclick = closeFull;
document.addEventListener("keydown", (event) => {
  if ($("full").hidden) return;
  const act = {"+": () => zoom(1.25), "=": () => zoom(1.25), "-": () => zoom(0.8), r: rotate,
               ArrowLeft: () => turnPage(-1), ArrowRight: () => turnPage(1), Escape: closeFull}[event.key];
  if (act) { event.preventDefault(); act(); }
});

$("search-form").addEventListener("submit", (event) => { event.preventDefault(); search($("search").value); });
$("search").focus();
