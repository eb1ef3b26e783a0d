"""letter: the e-mail that carries an e-policy to its holder (Chinese subject and body, text and HTML)."""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import formataddr, make_msgid
from html import escape

from esign.epolicy import EPolicyRequest
from esign.render import COMPANY


def epolicy_letter(
    policy: EPolicyRequest, version: int, pdf: bytes, link: str, sender: str, password_hint: str
) -> EmailMessage:
    """Return the message: a greeting, how to open the PDF, the download link, the PDF attached."""
    lines = [
        f"尊敬的{policy.holder.name}：",
        "",
        f"您投保的《{policy.product_name}》（保险单号 {policy.policy_no}，第 {version} 版）已生效，"
        "电子保单见附件。",
        f"打开密码：{password_hint}。",
        f"您也可以在这里下载并查验保单：{link}",
        "",
        "电子保单经本公司数字签名，与纸质保单具有同等效力。",
        COMPANY,
    ]
    subject = f"您的电子保单 {policy.policy_no}（{policy.product_name}）"
    message = _letter(policy, subject, sender, lines, link, "下载并查验电子保单")
    message.add_attachment(pdf, maintype="application", subtype="pdf", filename=f"{policy.policy_no}.pdf")
    return message


def reminder_letter(policy: EPolicyRequest, version: int, link: str, sender: str) -> EmailMessage:
    """Return the one reminder to acknowledge receipt (签收) of a version: a link to the customer's page,
    where the e-policy can be downloaded, checked and acknowledged (no attachment: it went before)."""
    lines = [
        f"尊敬的{policy.holder.name}：",
        "",
        f"您的电子保单《{policy.product_name}》（保险单号 {policy.policy_no}，第 {version} 版）已发送给您，"
        "我们尚未收到您的签收。",
        f"请在这里查看并点击“我已收到”签收：{link}",
        "",
        COMPANY,
    ]
    subject = f"请签收您的电子保单 {policy.policy_no}（{policy.product_name}）"
    return _letter(policy, subject, sender, lines, link, "查看并签收电子保单")


def _letter(
    policy: EPolicyRequest, subject: str, sender: str, lines: list[str], link: str, link_text: str
) -> EmailMessage:
    """Return a message to the holder: the lines as text, and as HTML with the line holding the link
    made a link named link_text."""
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = formataddr((COMPANY, sender))
    message["To"] = formataddr((policy.holder.name, policy.holder.email))
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or "localhost")
    message.set_content("\n".join(lines))
    html = "".join(
        f"<p>{escape(line)}</p>"
        if "http" not in line
        else f'<p><a href="{escape(link)}">{escape(link_text)}</a></p>'
        for line in lines
        if line
    )
    message.add_alternative(f"<!doctype html><html><body>{html}</body></html>", subtype="html")
    return message
