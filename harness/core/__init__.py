"""The sans-I/O core: plans, limits and fault decisions. Imports no asyncio, socket or aiosmtpd."""
