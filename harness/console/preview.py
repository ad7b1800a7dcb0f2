"""What the page shows of a message beyond its parts: the HTML body with its inline (``cid:``)
images in place, and the list's snippet and attachment count.

An HTML body names its inline images by ``cid:`` URLs, the Content-IDs of other parts. The
page's frame runs under a policy that loads nothing but ``data:`` images, so the images are
put into the body as ``data:`` URLs of their parts: the policy stays as strict as it is, and a
body framed from the page itself (with a token) shows them too. At most INLINED_BYTES of images
go in; past that, a ``cid:`` stays as it was (a broken image, not a slow page).
"""

from __future__ import annotations

import base64
import re
from typing import Any

from harness.console import mime

#: The most image bytes put into one body as data: URLs.
INLINED_BYTES = 16 * 1024 * 1024
#: Characters of a message's text the list shows.
SNIPPET_CHARS = 140
_CID = re.compile(r"cid:([^\s\"'<>)]+)", re.IGNORECASE)
_IMAGE = re.compile(r"image/[a-z0-9.+-]+")


def inline_html(data: bytes) -> str | None:
    """The HTML body with each ``cid:`` it names as a data: URL of that part (None: there is no
    HTML body); raises mime.TooComplex for a message not taken apart."""
    reason = mime.too_complex(data)
    if reason is not None:
        raise mime.TooComplex(reason)
    message = mime.parse(data)
    body = message.get_body(preferencelist=("html",))
    if body is None:
        return None
    images: dict[str, tuple[str, bytes]] = {}
    for part in mime.walk(message):
        content_id = part.get("Content-ID")
        kind = part.get_content_type()
        if content_id and not part.is_multipart() and _IMAGE.fullmatch(kind):
            images[str(content_id).strip("<> ").lower()] = (kind, mime.leaf_payload(part))
    budget = INLINED_BYTES

    def put(found: re.Match[str]) -> str:
        nonlocal budget
        image = images.get(_unquote(found.group(1)).lower())
        if image is None or len(image[1]) > budget:
            return found.group(0)
        budget -= len(image[1])
        return f"data:{image[0]};base64,{base64.b64encode(image[1]).decode()}"

    return _CID.sub(put, mime.text_of(body))


def _unquote(cid: str) -> str:
    """A cid: URL's Content-ID (RFC 2392: percent-encoded)."""
    return re.sub(r"%([0-9A-Fa-f]{2})", lambda m: chr(int(m.group(1), 16)), cid)


def summary(data: bytes) -> dict[str, Any]:
    """The list's view of a message: the start of its text, and how many attachments it has
    (parts that are neither a body nor an inline image)."""
    snippet = mime.searchable_text(data)[:SNIPPET_CHARS]
    if mime.too_complex(data) is not None:
        return {"snippet": snippet, "attachments": None}
    described = mime.describe(data)
    attachments = sum(1 for p in described["parts"] if p["attachment"] and not p["content_id"])
    return {"snippet": snippet, "attachments": attachments}
