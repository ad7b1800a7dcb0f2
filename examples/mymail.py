"""A strategy of your own: README's example, as a file the suite runs.

ses-harness run session-cap --strategy examples.mymail:send_batch
"""

# mymail.py
import smtplib

from harness import Claim, ClaimStatus


def send_batch(messages, endpoint, clock):
    client = None
    for message in messages:
        for attempt in (1, 2):  # a 421 comes before the data: nothing stored, resend once
            try:
                if client is None:
                    client = endpoint.connect()  # smtplib.SMTP, STARTTLS and AUTH done
                client.sendmail(message.sender, list(message.recipients), message.data)
            except smtplib.SMTPResponseException as error:
                client.close()
                client = None  # start afresh: the session may be gone
                if error.smtp_code == 421 and attempt == 1:
                    continue
                reply = error.smtp_error.decode("utf-8", "replace")
                yield Claim(message.id, ClaimStatus.FAILED, error.smtp_code, reply)
            except (smtplib.SMTPException, OSError) as error:
                client = None  # cut mid-message: it may have arrived, so no resend
                yield Claim(message.id, ClaimStatus.FAILED, None, str(error))
            else:
                yield Claim(message.id, ClaimStatus.SENT)
            break
    if client is not None:
        client.quit()
