"""`hunt`: a hypothesis search for the smallest fault schedule that makes a strategy fail.

Imports `harness.runner`, `harness.server` and `harness.core`.
"""
