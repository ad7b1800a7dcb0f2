"""The standalone server's parts: the HTTP API, the live web page, the on-disk store, the live log.

Imports `harness.server` and `harness.core`; `harness.cli.serve` puts them together.
"""
