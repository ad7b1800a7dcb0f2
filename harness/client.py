"""What a client process run as ``cmd:`` imports: the batch, the server, and a claim writer.

The code is :mod:`harness.runner.clientside`; this is its short public path.
"""

from harness.runner.clientside import Claims, Message, Server, batch, claim_line, server

__all__ = ["Claims", "Message", "Server", "batch", "claim_line", "server"]
