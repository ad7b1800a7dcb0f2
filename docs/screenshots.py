"""Make the live page's screenshots in docs/screenshots/: the message view, the session view and
the plan panel, at 1400 px in the light and dark themes and at a phone's width.

    python docs/screenshots.py [--out docs/screenshots] [--chromium /usr/bin/chromium]

It starts `ses-harness serve` on free loopback ports, sends it a little mail (an HTML message
with an attachment, a greylisted recipient, a login with a wrong password, a session that meets
the cap), and photographs the page in headless Chromium (Playwright). Needs nothing remote.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import smtplib
import struct
import subprocess
import sys
import tempfile
import zlib
from email.message import EmailMessage
from pathlib import Path

from playwright.sync_api import sync_playwright

HERE = Path(__file__).resolve().parent
USER, PASSWORD = "app", "s3cret"
#: Stored templates the plan panel lists (the AWS CLI's create-email-template input).
TEMPLATES = [
    {
        "TemplateName": "order-shipped",
        "TemplateContent": {
            "Subject": "Your order #{{order}} has shipped",
            "Text": "Hello {{name}}",
            "Html": "<p>Hello {{name}}</p>",
        },
    },
    {
        "TemplateName": "password-reset",
        "TemplateContent": {"Subject": "Reset your password", "Text": "Follow {{link}}"},
    },
]
GREYLIST = "name=greylist,stage=RCPT,nth=1,action=reply,code=451,text=4.7.1 Greylisted, try later"


def start_server() -> tuple[subprocess.Popen[str], dict]:
    command = [sys.executable, "-m", "harness", "serve", "--port", "0", "--api-port", "0"]
    command += ["--profile", "ses", "--limit", "session_limit=3", "--auth", f"{USER}:{PASSWORD}"]
    command += ["--fault", GREYLIST]
    templates = Path(tempfile.mkdtemp(prefix="screenshots-")) / "templates.json"
    templates.write_text(json.dumps(TEMPLATES))
    command += ["--templates", str(templates)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith("READY "):
            return process, json.loads(line[len("READY ") :])
    raise SystemExit("ses-harness serve exited before it was ready")


def newsletter(number: int) -> bytes:
    mail = EmailMessage()
    mail["From"] = "Shop <news@shop.example>"
    mail["To"] = f"customer{number}@example.com"
    mail["Subject"] = f"Your order #{1040 + number} has shipped"
    mail["Message-ID"] = f"<order-{1040 + number}@shop.example>"
    mail.set_content(
        f"Hello customer {number},\n\nyour order #{1040 + number} left our warehouse today.\n"
        "Track it with the number in the attached receipt.\n\nThe Shop team\n"
    )
    mail.add_alternative(
        f"""<html><body style="font-family: sans-serif; color: #222">
<img src="cid:logo@shop.example" alt="Shop logo">
<h2 style="color: #c45500">Your order #{1040 + number} has shipped</h2>
<p>Hello customer {number},</p>
<p>your order left our warehouse today. <b>Track it</b> with the number in the receipt.</p>
<img src="https://tracker.example/pixel.gif" alt="(remote image: not loaded)" width="1" height="1">
<script>document.body.innerHTML = "script ran";</script>
<p style="color: #777">The Shop team</p></body></html>""",
        subtype="html",
    )
    mail.get_payload()[1].add_related(logo(), "image", "png", cid="<logo@shop.example>")
    mail.add_attachment(
        b"%PDF-1.4\n% a receipt\n" * 40,
        maintype="application",
        subtype="pdf",
        filename=f"receipt-{1040 + number}.pdf",
    )
    return mail.as_bytes().replace(b"\n", b"\r\n")


def logo(width: int = 160, height: int = 36) -> bytes:
    """An orange bar as a PNG, the newsletter's inline (cid:) image."""
    row = b"\x00" + b"\xff\x99\x00" * width
    data = zlib.compress(row * height)

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")
    )


def send_mail(host: str, port: int) -> None:
    with smtplib.SMTP(host, port) as client:  # a wrong password first, then the right one
        client.ehlo()
        with contextlib.suppress(smtplib.SMTPAuthenticationError):
            client.login(USER, "wrong")
        client.login(USER, PASSWORD)
        sender, number = "news@shop.example", 1
        while number <= 4:
            try:
                client.sendmail(sender, [f"customer{number}@example.com"], newsletter(number))
            except smtplib.SMTPRecipientsRefused:
                continue  # greylisted: the same message again
            except smtplib.SMTPServerDisconnected:
                break
            except smtplib.SMTPSenderRefused:  # the session cap: 421
                break
            number += 1
    with smtplib.SMTP(host, port) as client:
        client.login(USER, PASSWORD)
        client.sendmail(sender, ["customer4@example.com"], newsletter(4))


def shoot(api_url: str, out: Path, chromium: str | None) -> list[Path]:
    made = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium, args=["--no-sandbox", "--disable-gpu", "--no-first-run"]
        )
        for scheme in ("light", "dark"):
            page = browser.new_page(viewport={"width": 1400, "height": 900}, color_scheme=scheme)
            suffix = "" if scheme == "light" else "-dark"
            page.goto(f"{api_url}/#/messages/1")
            page.wait_for_selector("#status.ok")
            page.click("#message-tabs button[data-tab=html]")
            page.frame_locator("#message-html").locator("h2").wait_for()
            page.locator("#messages tbody tr").first.wait_for()
            made.append(out / f"message-view{suffix}.png")
            page.screenshot(path=str(made[-1]))
            page.set_viewport_size({"width": 1400, "height": 1720})  # the whole conversation
            page.goto(f"{api_url}/#/sessions/1")
            page.wait_for_selector("#conversation tr.end")
            made.append(out / f"session-view{suffix}.png")
            page.screenshot(path=str(made[-1]))
            page.set_viewport_size({"width": 1400, "height": 900})
            page.goto(f"{api_url}/#/plan")
            page.wait_for_selector("#plan-rules tbody tr")
            made.append(out / f"plan-panel{suffix}.png")
            page.screenshot(path=str(made[-1]), full_page=True)
            page.close()
        phone = browser.new_page(viewport={"width": 390, "height": 844}, device_scale_factor=2)
        phone.goto(f"{api_url}/#/messages")
        phone.wait_for_selector("#messages tbody tr")
        made.append(out / "phone-list.png")
        phone.screenshot(path=str(made[-1]))
        phone.goto(f"{api_url}/#/messages/1")
        phone.wait_for_selector("#message-text:not(:empty)")
        made.append(out / "phone-message.png")
        phone.screenshot(path=str(made[-1]))
        browser.close()
    return made


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE / "screenshots")
    parser.add_argument(
        "--chromium", default=shutil.which("chromium") or shutil.which("chromium-browser")
    )
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    process, ready = start_server()
    try:
        send_mail(ready["smtp_host"], ready["smtp_port"])
        for path in shoot(ready["api_url"], args.out, args.chromium):
            print(path)
    finally:
        process.terminate()
        process.wait(timeout=30)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
