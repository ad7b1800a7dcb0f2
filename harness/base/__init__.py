"""What the server, the strategies and the runner share: the clocks, the endpoint a client
connects to, and the ledger of what the server saw and did.

Below the server: a strategy or a scorer uses these without importing the aiosmtpd adapter.
Imports only `harness.core`.
"""
