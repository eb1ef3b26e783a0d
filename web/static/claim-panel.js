"use strict";
// The claim panel of the viewer (GET /v1/claims/{claim_no}): the checklist with what is missing, the
// invoices' total, the checks across the material and each document's state and values. Its own script:
// it listens to the viewer's search (the viewer:search event) and shows itself only when the number is a claim the reader may see.
(() => {
  const panel = document.getElementById("claim");
  const STATES = {complete: "已完成 complete", key_entry: "待录入 key-entry", rescan: "待重扫 rescan",
                  superseded: "已替代 superseded"};
  const TYPES = {claim_form: "理赔申请书", medical_invoice: "医疗收费票据", bank_card: "银行卡",
                 idcard_front: "身份证正面", idcard_back: "身份证背面", claim_evidence: "理赔资料"};
  const SHOWN = {claim_form: ["claimant_name", "insured_name", "claim_amount", "account_number"],
                 medical_invoice: ["invoice_no", "hospital", "total_amount"], bank_card: ["bank_name", "card_number"],
                 idcard_front: ["name"]};

  function element(tag, text, className) {
    const node = document.createElement(tag);
    if (text !== undefined) node.textContent = text;
    if (className) node.className = className;
    return node;
  }

  function checklist(body) {
    const list = element("ul", undefined, "checklist");
    for (const item of body.checklist) {
      const mark = item.met && !item.waiting ? "✓" : item.waiting ? "…" : "✗";
      const state = item.met && !item.waiting ? "已收齐" : item.waiting ? "待录入" : "缺少";
      const li = element("li", `${mark} ${item.label} · ${state}`, item.met && !item.waiting ? "met" : "missing");
      li.dataset.item = item.item;
      list.appendChild(li);
    }
    return list;
  }

  function material(body) {
    const table = element("table");
    const head = table.createTHead().insertRow();
    for (const title of ["资料 type", "状态 state", "内容 values"]) head.appendChild(element("th", title));
    const rows = table.createTBody();
    for (const [type, items] of Object.entries(body.material)) {
      for (const item of items) {
        const row = rows.insertRow();
        row.dataset.docId = item.doc_id;
        row.insertCell().textContent = TYPES[type] || type;
        row.insertCell().textContent = STATES[item.state] || item.state;
        const values = item.withheld ? "（无权查看 withheld）"
          : (SHOWN[type] || []).map((name) => item.values[name]).filter(Boolean).join(" · ");
        row.insertCell().textContent = values;
      }
    }
    return table;
  }

  async function show(text) {
    panel.hidden = true;
    panel.innerHTML = "";
    if (!text || /^[0-9]{17}[0-9X]$/.test(text)) return;
    const response = await fetch(`/v1/claims/${encodeURIComponent(text)}`,
                                 {credentials: "same-origin", headers: {"X-Reason": text}});
    if (!response.ok) return;  // not a claim, or not one this reader may see: the viewer shows the rest
    const body = await response.json();
    panel.append(element("h2", `赔案 ${body.claim_no} · ${body.complete ? "资料齐全 complete" : "资料未齐 incomplete"}`),
                 checklist(body));
    if (body.missing.length) panel.appendChild(element("p", `尚缺 missing: ${body.missing.join("、")}`, "missing"));
    panel.appendChild(element("p", `发票合计 invoices' total: ¥${body.invoice_total}（${body.invoices_counted.length} 张）`,
                              "total"));
    if (body.checks.length) {
      const checks = element("ul", undefined, "checks");
      for (const check of body.checks) checks.appendChild(element("li", check));
      panel.appendChild(checks);
    }
    panel.appendChild(material(body));
    panel.hidden = false;
  }

  // The viewer's search, typed or from a deep link (/viewer?claim_no=...): see the top of viewer.js.
  document.addEventListener("viewer:search", (e) => show(String(e.detail.number).trim().toUpperCase()));
})();
