"""The aiosmtpd adapter: carries out the core's decisions on real sockets."""
