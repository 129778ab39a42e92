"""What calls for one item after another share: a URL's shape.

``diff`` aligns two requests' outgoing calls by it, ``insights`` groups an N+1 of HTTP
calls by it, and the cinema's waterfall flags such a loop by it.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

__all__ = ["url_shape"]

_ID_SEGMENT = re.compile(
    r"\d+|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
    r"|[0-9a-fA-F]{16,}"
)


def url_shape(url: str) -> str:
    """``https://api/items/{id}?page=?``: a URL as calls for one item after another share
    it (its scheme, host and path, an id segment as ``{id}``, each query value as ``?``)."""
    parts = urlsplit(url)
    path = "/".join("{id}" if _ID_SEGMENT.fullmatch(s) else s for s in parts.path.split("/"))
    query = "&".join(f"{p.partition('=')[0]}=?" for p in parts.query.split("&") if p)
    return f"{parts.scheme}://{parts.netloc}{path}" + (f"?{query}" if query else "")
