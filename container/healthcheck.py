"""The image's HEALTHCHECK: exit 0 when `GET /readyz` answers 200 (SMTP, the HTTP API and the
SES API all accept), 1 otherwise. It asks the port in SES_HARNESS_API_PORT, as `serve` does."""

import os
import sys
import urllib.request

host = os.environ.get("SES_HARNESS_API_HOST", "127.0.0.1")
if host in ("0.0.0.0", "::", ""):
    host = "127.0.0.1"
port = os.environ.get("SES_HARNESS_API_PORT", "8025")
try:
    with urllib.request.urlopen(f"http://{host}:{port}/readyz", timeout=4) as response:
        sys.exit(0 if response.status == 200 else 1)
except OSError as error:  # 503 (HTTPError), refused, timed out
    print(f"not ready: {error}", file=sys.stderr)
    sys.exit(1)
