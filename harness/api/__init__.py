"""The HTTP API (JSON) and live page of `ses-harness serve`: see docs/http-api.md."""

from harness.api.app import ApiError, create_app
from harness.api.server import ApiServer

__all__ = ["ApiError", "ApiServer", "create_app"]
