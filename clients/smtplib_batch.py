"""smtplib as a batch script uses it: one connection, `sendmail` per message; the loop stops at
the first exception (what the seed's application did).

The idiom is the standard library's own example (https://docs.python.org/3/library/smtplib.html,
"SMTP Example": `with smtplib.SMTP(host) as server: server.sendmail(from, to, msg)`), in a loop.
"""

from __future__ import annotations

import smtplib
import ssl
import sys

from harness import client


def connect(server: client.Server) -> smtplib.SMTP:
    context = ssl.create_default_context(cafile=server.ca_file)
    if server.tls == "implicit":
        smtp: smtplib.SMTP = smtplib.SMTP_SSL(server.host, server.port, context=context)
    else:
        smtp = smtplib.SMTP(server.host, server.port)
    if server.tls == "starttls":
        smtp.starttls(context=context)
    if server.user:
        smtp.login(server.user, server.password or "")
    return smtp


def main() -> None:
    claims = client.Claims()
    with connect(client.server()) as smtp:
        for message in client.batch():
            try:
                smtp.sendmail(message.sender, message.recipients, message.data)
            except (smtplib.SMTPException, OSError) as error:
                claims.failed(message, error)
                print(f"stopped: {type(error).__name__}: {error}", file=sys.stderr)
                break
            claims.sent(message)


if __name__ == "__main__":
    main()
