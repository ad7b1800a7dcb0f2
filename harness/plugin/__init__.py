"""The pytest plugin: fixtures, the marker, arrangement, assertions, and scenario files as items.

Imports `harness.runner`, `harness.server` and `harness.core`, and those only when a test asks.
"""
