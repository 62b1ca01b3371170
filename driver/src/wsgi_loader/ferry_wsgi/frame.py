"""One request as ferry sends it: a frame holding the PEP 3333 ``environ``
variables already worked out from the request head, then the body
(CONTENT_LENGTH bytes). ferry writes it in http/src/wsgi_frame.rs, which
documents the layout:

    0x00, length (4 bytes, big-endian), flags (1 byte), KEY NUL VALUE NUL ... VALUE

The variables follow the rules request.py applies to an HTTP head (ferry applies
them to the fields it would have sent); only PATH_INFO comes raw, decoded here."""

from io import BytesIO
from urllib.parse import unquote_to_bytes

from . import MAX_HEAD, BadRequest
from .body import read_body, recv_more

START = b"\0"  # a frame's first byte; no HTTP request starts with it
PREFIX = 6     # bytes before the variables: START, length, flags
# flags byte -> (is_head, http11, keep_alive): 1 HEAD, 2 HTTP/1.1, 4 keep-alive
_FLAGS = tuple((bool(f & 1), bool(f & 2), bool(f & 4)) for f in range(256))


def frame_complete(pending):
    """Whether `pending` (starting with START) holds a whole frame, or one too large
    to wait for (read_frame refuses it)."""
    if len(pending) < 5:
        return False
    size = int.from_bytes(pending[1:5], "big")
    return size > MAX_HEAD or len(pending) >= 5 + size


def read_frame(sock, pending, base_environ):
    """Decode one frame from `pending` (receiving more as needed) into a copy of
    `base_environ`. Returns what request.read_request returns."""
    if len(pending) < PREFIX:
        pending = _rest_of_frame(sock, pending)
    end = 5 + int.from_bytes(pending[1:5], "big")
    if len(pending) < end or end == 5:
        pending = _rest_of_frame(sock, pending)
    fields = pending[PREFIX:end].decode("latin-1").split("\0")
    if len(fields) & 1:
        raise BadRequest(400, "malformed request frame: an odd number (%d) of keys and values"
                         % len(fields))
    environ = base_environ.copy()
    it = iter(fields)
    environ.update(zip(it, it))
    path = environ.get("PATH_INFO")
    if path is None or "REQUEST_METHOD" not in environ:
        raise BadRequest(400, "malformed request frame: no %s"
                         % ("PATH_INFO" if path is None else "REQUEST_METHOD"))
    if "%" in path:
        environ["PATH_INFO"] = unquote_to_bytes(path.encode("latin-1")).decode("latin-1")
    is_head, http11, keep = _FLAGS[pending[5]]
    cl = environ.get("CONTENT_LENGTH")
    if cl is None:
        environ["wsgi.input"] = BytesIO(b"")
        return environ, is_head, http11, keep, None, pending[end:]
    if not (cl.isascii() and cl.isdigit()) or len(cl) > 18:
        raise BadRequest(400, "malformed request frame: CONTENT_LENGTH %r" % cl[:40])
    streaming, pending = read_body(sock, environ, pending, end, int(cl))
    return environ, is_head, http11, keep, streaming, pending


def _rest_of_frame(sock, pending):
    """Receive until `pending` holds its whole frame (not the body); refuse a frame
    whose length is 0 (no flags) or larger than a request head may be."""
    while len(pending) < 5:
        pending = recv_more(sock, pending)
    size = int.from_bytes(pending[1:5], "big")
    if size > MAX_HEAD:
        raise BadRequest(431, "request frame too large (%d bytes)" % size)
    if not size:
        raise BadRequest(400, "malformed request frame: no flags")
    while len(pending) < 5 + size:
        pending = recv_more(sock, pending)
    return pending
