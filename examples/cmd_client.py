"""Your own batch sender, judged by the harness as a process of its own (a command strategy).

    ses-harness run session-cap --strategy 'cmd:python examples/cmd_client.py'

The harness starts it once per case with the batch in files and the fake server in SMTP_*
variables (see `ses-harness run --help`); it sends the way an application does, with smtplib,
and writes one claim per message: what it believes happened. The one rule it follows that a
naive sender does not: a 421 or a lost connection *before the message's data* means nothing
was stored, so it reconnects and sends that message again; a 5xx is final.
"""

from __future__ import annotations

import smtplib
import ssl

from harness.client import Claims, Server, batch, server

ATTEMPTS = 3


def connect(where: Server) -> smtplib.SMTP:
    context = ssl.create_default_context(cafile=where.ca_file)
    if where.tls == "implicit":
        smtp: smtplib.SMTP = smtplib.SMTP_SSL(where.host, where.port, context=context)
    else:
        smtp = smtplib.SMTP(where.host, where.port)
        if where.tls == "starttls":
            smtp.starttls(context=context)
    if where.user:
        smtp.login(where.user, where.password or "")
    return smtp


def main() -> None:
    where, claims, smtp = server(), Claims(), None
    for message in batch():
        for attempt in range(1, ATTEMPTS + 1):
            try:
                if smtp is None:
                    smtp = connect(where)
                smtp.sendmail(message.sender, message.recipients, message.data)
            except smtplib.SMTPResponseException as error:
                if error.smtp_code == 421 or error.smtp_code >= 500 or attempt == ATTEMPTS:
                    smtp = None  # smtplib has closed the connection after a 421
                if error.smtp_code >= 500 or attempt == ATTEMPTS:
                    claims.failed(message, error)
                    break
            except (smtplib.SMTPException, OSError) as error:
                smtp = None
                if attempt == ATTEMPTS:
                    claims.failed(message, error)
            else:
                claims.sent(message)
                break
    if smtp is not None:
        smtp.quit()


if __name__ == "__main__":
    main()
