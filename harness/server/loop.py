"""The event loop of the sync API's thread: asyncio's, or uvloop's when asked for."""

from __future__ import annotations

import asyncio
import os

#: Set to 1 to run the sync API's loop on uvloop (`pip install 'ses-fault-harness[fast]'`).
UVLOOP_ENV = "SES_HARNESS_UVLOOP"


def new_event_loop() -> asyncio.AbstractEventLoop:
    """The loop of the sync API's thread: uvloop's when SES_HARNESS_UVLOOP=1, else asyncio's."""
    if os.environ.get(UVLOOP_ENV, "") not in ("", "0"):
        try:
            import uvloop
        except ImportError as missing:
            raise RuntimeError(
                f"{UVLOOP_ENV} is set but uvloop is not installed: "
                "pip install 'ses-fault-harness[fast]'"
            ) from missing
        return uvloop.new_event_loop()
    return asyncio.new_event_loop()
