"""`Content-Disposition` for downloads whose names carry user input (a zone id from the query string).

HTTP headers are latin-1: a name with 冷库 or ğ in it made Starlette fail with a 500 (schemathesis found
it). RFC 6266: an ASCII `filename` for old clients plus `filename*` in UTF-8 for the rest."""

from __future__ import annotations

import re
from urllib.parse import quote

_UNSAFE = re.compile(r'[^A-Za-z0-9._-]')


def attachment(name: str) -> dict[str, str]:
    ascii_name = _UNSAFE.sub("_", name)
    return {"Content-Disposition": f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name, safe='')}"}
