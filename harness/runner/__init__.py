"""Scenario runs: scenario files, workloads, strategies and their interface, scoring, the matrix.

Imports `harness.server` and `harness.core`; knows nothing of reports, the plugin or the CLI.
"""
