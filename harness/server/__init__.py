"""The fake server: the aiosmtpd adapter, ledger, TLS, endpoint and clocks, as `FakeSES`.

Carries out `harness.core`'s decisions on real sockets; imports only `harness.core`.
"""
