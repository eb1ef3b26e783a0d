"use strict";
// The public check: the chosen PDF is posted to POST /verify (its password in a header, never in the
// URL) and the answer is shown in words, Chinese first. Nothing is stored.
const $ = (id) => document.getElementById(id);

function row(list, zh, en, value) {
  const dt = document.createElement("dt");
  dt.textContent = `${zh} ${en}`;
  const dd = document.createElement("dd");
  dd.textContent = value;
  list.append(dt, dd);
}

function yes(value) { return value ? "是 yes" : "否 no"; }

function showSignature(s) {
  const box = document.createElement("article");
  box.className = s.ok ? "signature good" : "signature bad";
  const title = document.createElement("h3");
  const kind = s.kind === "document timestamp" ? "文档时间戳 document timestamp" : "签名 signature";
  title.textContent = `${kind} ${s.field}: ${s.ok ? "有效 valid" : "无效 does not hold"}`;
  const list = document.createElement("dl");
  row(list, "签名完整", "intact", yes(s.intact && s.valid));
  row(list, "签署人", "signer", s.signer);
  row(list, "签名类型", "certification", `${s.certification_zh} ${s.certification}`);
  if (s.kind === "signature") row(list, "签名后修改", "changes since", `${s.changes_zh} ${s.changes}`);
  row(list, "时间戳", "timestamp", s.timestamp || "无 none");
  row(list, "受信任", "trusted", s.trusted_by ? `${yes(s.trusted)}: ${s.trusted_by}` : yes(s.trusted));
  if (s.test_only) row(list, "测试证书", "TEST certificate", "仅供测试 not valid for a real policy");
  if (s.long_term) row(list, "长期验证", "long-term", s.long_term);
  const problems = document.createElement("ul");
  problems.className = "problems";
  for (const f of s.failures) {
    const li = document.createElement("li");
    li.textContent = `${f.zh}。${f.en}.`;
    li.dataset.reason = f.reason;
    problems.append(li);
  }
  box.append(title, list, problems);
  return box;
}

function show(answer) {
  $("result").hidden = false;
  $("signatures").replaceChildren();
  if (answer.error) {
    const encrypted = answer.error === "wrong_password";
    $("verdict").textContent = encrypted
      ? `此 PDF 已加密，请输入正确的打开密码。${answer.detail}`
      : `无法读取此文件。Could not read this file: ${answer.detail}`;
    $("verdict").className = "bad";
    $("roots").textContent = "";
    if (encrypted) $("password").focus();
    return;
  }
  $("verdict").textContent = answer.ok
    ? "签名有效：文件自签署后未被修改，签署人可信。The signatures hold."
    : "签名无效，原因见下。The signatures do NOT hold; the reasons are below.";
  $("verdict").className = answer.ok ? "good" : "bad";
  for (const s of answer.signatures) $("signatures").append(showSignature(s));
  for (const p of answer.problems) {
    const para = document.createElement("p"); para.textContent = p; $("signatures").append(para);
  }
  $("roots").textContent = answer.roots.length
    ? `所用根证书 Roots checked against: ${answer.roots.join("; ")}`
    : "未配置根证书，无法信任任何签署人。No roots are configured: no signer can be trusted.";
}

async function check(event) {
  event.preventDefault();
  const file = $("file").files[0];
  if (!file) return;
  const headers = {"Content-Type": "application/pdf"};
  if ($("password").value) headers["X-PDF-Password"] = $("password").value;
  $("check").disabled = true;
  $("verdict").textContent = "正在验证… Checking…";
  try {
    const response = await fetch("/verify", {method: "POST", body: file, headers});
    show(await response.json());
  } catch (error) {
    show({error: "network", detail: String(error)});
  } finally {
    $("check").disabled = false;
  }
}

function dropped(event) {
  event.preventDefault();
  if (event.dataTransfer.files.length) {
    $("file").files = event.dataTransfer.files;
    $("form").requestSubmit();
  }
}

$("form").addEventListener("submit", check);
$("drop").addEventListener("dragover", (event) => event.preventDefault());
$("drop").addEventListener("drop", dropped);
