"""The channels that reach people: email over SMTP and SMS through a gateway's HTTP API.

Both carry the outbox message's key, so that a message delivered twice (the process died after
sending and before recording it) can be recognised: as the email's Message-ID, and as the SMS
gateway call's Idempotency-Key.
"""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate

from complaintflow.config import Settings
from complaintflow.dispatch import TIMEOUT, DeliveryFailed, channels, http_post
from complaintflow.outbox import Claimed


@channels.register("email")
def send_email(settings: Settings, message: Claimed) -> None:
    mail = EmailMessage()
    mail["From"] = settings.mail_from
    mail["To"] = message.recipient
    mail["Subject"] = message.payload["subject"]
    mail["Date"] = formatdate(localtime=False)
    mail["Message-ID"] = f"<{message.key}@complaintflow>"
    mail.set_content(message.payload["body"])
    # After set_content, which replaces every Content-* header.
    mail["Content-Language"] = message.payload.get("language", "en").replace("_", "-")
    try:
        with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=TIMEOUT) as smtp:
            if settings.smtp_starttls:
                smtp.starttls(context=ssl.create_default_context())
            if settings.smtp_user:
                smtp.login(settings.smtp_user, settings.smtp_password)
            smtp.send_message(mail)
    except smtplib.SMTPRecipientsRefused as exc:
        refused = f"the mail server refused {message.recipient}: {exc}"
        raise DeliveryFailed(refused, final=True) from None
    except (smtplib.SMTPException, OSError) as exc:
        raise DeliveryFailed(f"{type(exc).__name__}: {exc}") from None


@channels.register("sms")
def send_sms(settings: Settings, message: Claimed) -> None:
    """POST {"to", "text", "id"} as JSON with the gateway's bearer token."""
    headers = {"Idempotency-Key": message.key}
    if settings.sms_token:
        headers["Authorization"] = f"Bearer {settings.sms_token}"
    text = f"{message.payload['subject']}\n{message.payload['body']}"
    http_post(
        settings.sms_url,
        json={"to": message.recipient, "text": text, "id": message.key},
        headers=headers,
    )
