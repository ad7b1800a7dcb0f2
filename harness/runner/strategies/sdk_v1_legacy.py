"""`sdk-v1-legacy`: boto3 `ses.send_raw_email` (the v1 Query API), legacy retries.

Legacy mode is what older applications run: up to 5 attempts, retrying throttling codes (v1's
400 `Throttling`), 5xx and connection errors after ``random * 2**n`` seconds.
"""

from harness.runner.strategies.sdk import strategy

send_batch = strategy("ses", {"mode": "legacy", "max_attempts": 5})
