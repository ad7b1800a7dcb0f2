"""The proxy: the fake server's plan in front of a real SMTP server (`SesProxy`)."""
