"""`sdk-v2-standard`: boto3 `sesv2.send_email` (raw content), the SDK's standard retry mode.

Standard mode (botocore's default for new configs) makes up to 3 attempts, retries throttling
errors (429 TooManyRequestsException, ThrottlingException), 5xx and lost connections, with
exponential backoff and full jitter (up to 20 s), and stops retrying when its retry quota is
spent. What it cannot know: whether a cut connection carried an accepted message.
"""

from harness.runner.strategies.sdk import strategy

send_batch = strategy("sesv2", {"mode": "standard", "max_attempts": 3})
