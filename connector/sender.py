"""What every HTTP stack of the engine shares: the checks a request passes before any byte is sent.

A header value or request target is written to the socket as it is; a line break in it ends the
header (or the request) early, and what follows is read by the server as a header or a second
request of the sender's choosing. So requests are checked once here, whichever stack sends them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import quote

from connector.errors import InvalidRequestError

# RFC 9110 5.1: a field name is a token; 5.5: a field value is visible ASCII, spaces and tabs (obs-text,
# bytes >= 0x80, is refused: the stacks would encode it differently, and no API needs it).
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_FIELD_VALUE = re.compile(r"[\t\x20-\x7e]*")
_TARGET_BAD = re.compile(r"[\x00-\x20\x7f]")  # spaces and control characters: never part of a URL
_PRINTABLE_ASCII = "".join(chr(c) for c in range(0x21, 0x7F))
_NAMES = {"\r": "a carriage return (CR)", "\n": "a line feed (LF)", "\0": "a NUL byte", " ": "a space"}


def _first_bad(text: str, allowed: re.Pattern[str]) -> str:
    bad = next((c for c in text if not allowed.fullmatch(c)), "")
    return _NAMES.get(bad) or f"the character {bad!r}"


def request_url(method: str, url: str) -> str:
    """The URL to send: refused if it holds a space or a control character, non-ASCII percent-encoded."""
    if not _TOKEN.fullmatch(method):
        raise InvalidRequestError(f"method {method!r} is not an HTTP token: refused before sending")
    found = _TARGET_BAD.search(url)
    if found:
        what = _NAMES.get(found.group(), f"the control character {found.group()!r}")
        raise InvalidRequestError(f"request URL {url[:200]!r} contains {what}: refused before sending")
    return url if url.isascii() else quote(url, safe=_PRINTABLE_ASCII)


def check_headers(headers: Mapping[str, str]) -> None:
    """Refuse header names that are not tokens and values with line breaks, NUL or non-ASCII characters."""
    for name, value in headers.items():
        if not _TOKEN.fullmatch(name):
            raise InvalidRequestError(
                f"header name {name!r} is not an HTTP token (it contains {_first_bad(name, _TOKEN)}): "
                "refused before sending"
            )
        if not _FIELD_VALUE.fullmatch(value):
            raise InvalidRequestError(
                f"header {name!r}: its value contains {_first_bad(value, _FIELD_VALUE)}: refused before "
                "sending (a line break in a header would inject headers or a second request)"
            )
