"""`sdk-v2-adaptive`: boto3 `sesv2.send_email`, the SDK's adaptive retry mode.

Adaptive mode is standard mode plus a client-side rate limiter that slows down (CUBIC) after a
throttling error: the SDK's own answer to "Maximum sending rate exceeded". Its waits, like its
retries', run on the scenario's clock.
"""

from harness.runner.strategies.sdk import strategy

send_batch = strategy("sesv2", {"mode": "adaptive", "max_attempts": 3})
