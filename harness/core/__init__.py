"""The sans-I/O core: plan schema, rule matching, limits, the decision engine and SES's profiles.

Imports nothing outside `harness.core`: no asyncio, socket, aiosmtpd or clock.
"""
