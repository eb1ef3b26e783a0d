"""letter: the e-mail that carries an e-policy to its holder (Chinese subject and body, text and HTML). The
bodies are Jinja2 templates under web/mail/ (routes/templates.py renders them): the HTML part escaped,
the text part as written."""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import formataddr, make_msgid

from esign.epolicy import EPolicyRequest
from esign.render import COMPANY
from routes.templates import page


def epolicy_letter(
    policy: EPolicyRequest, version: int, pdf: bytes, link: str, sender: str, password_hint: str
) -> EmailMessage:
    """Return the message: a greeting, how to open the PDF, the download link, the PDF attached."""
    subject = f"您的电子保单 {policy.policy_no}（{policy.product_name}）"
    message = _letter(
        "epolicy", policy, subject, sender, version=version, link=link, password_hint=password_hint
    )
    message.add_attachment(pdf, maintype="application", subtype="pdf", filename=f"{policy.policy_no}.pdf")
    return message


def reminder_letter(policy: EPolicyRequest, version: int, link: str, sender: str) -> EmailMessage:
    """Return the one reminder to acknowledge receipt (签收) of a version: a link to the customer's page,
    where the e-policy can be downloaded, checked and acknowledged (no attachment: it went before)."""
    subject = f"请签收您的电子保单 {policy.policy_no}（{policy.product_name}）"
    return _letter("reminder", policy, subject, sender, version=version, link=link)


def _letter(name: str, policy: EPolicyRequest, subject: str, sender: str, **context: object) -> EmailMessage:
    """Return a message to the holder: web/mail/<name>.txt as its text, web/mail/<name>.html as its HTML."""
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = formataddr((COMPANY, sender))
    message["To"] = formataddr((policy.holder.name, policy.holder.email))
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or "localhost")
    message.set_content(page(f"mail/{name}.txt", policy=policy, company=COMPANY, **context))
    message.add_alternative(
        page(f"mail/{name}.html", policy=policy, company=COMPANY, **context), subtype="html"
    )
    return message
