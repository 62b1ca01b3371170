"""One HTTP request read from the connection: its head parsed into a PEP 3333
``environ``, its body attached as wsgi.input. (ferry itself sends frames instead:
frame.py; HTTP is what anything else talking to the loader sends.)"""

import io
from urllib.parse import unquote_to_bytes

from . import MAX_HEAD, RECV_SIZE, BadRequest
from .body import read_body, read_chunked, recv_more

_TCHAR = frozenset(b"!#$%&'*+-.^_`|~0123456789"
                   b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
_TCHAR_STR = frozenset(chr(c) for c in _TCHAR)
_COMMON_METHODS = frozenset((b"GET", b"HEAD", b"POST", b"PUT", b"DELETE", b"PATCH", b"OPTIONS"))
_SKIP = ""  # environ key for header names that are dropped
_key_cache = {}  # header name (latin-1 str) -> environ key or _SKIP


def _environ_key(name):
    """Environ key for a header name (decoded as latin-1), or _SKIP. Raises
    BadRequest. The caller looks in _key_cache first."""
    if not name or not all(c in _TCHAR_STR for c in name):
        raise BadRequest(400, "invalid header name %r" % name.encode("latin-1"))
    if "_" in name:
        key = _SKIP
    else:
        key = "HTTP_" + name.upper().replace("-", "_")
        if key == "HTTP_CONTENT_TYPE":
            key = "CONTENT_TYPE"
        elif key == "HTTP_CONTENT_LENGTH":
            key = "CONTENT_LENGTH"
    if len(_key_cache) < 2000:
        _key_cache[name] = key
    return key


_host_cache = {}


def _server_name_port(host, scheme):
    """(SERVER_NAME, SERVER_PORT) from a Host header value."""
    cached = _host_cache.get((host, scheme))
    if cached is not None:
        return cached
    default_port = "443" if scheme == "https" else "80"
    if not host:
        result = ("localhost", default_port)
    elif host.startswith("["):  # [v6]:port
        end = host.find("]")
        rest = host[end + 1:] if end >= 0 else ""
        port = rest[1:] if rest.startswith(":") and rest[1:].isdigit() else default_port
        result = (host[:end + 1] if end >= 0 else host, port)
    else:
        name, sep, port = host.rpartition(":")
        if sep and port.isdigit():
            result = (name or "localhost", port)
        else:
            result = (host, default_port)
    if len(_host_cache) < 100:
        _host_cache[(host, scheme)] = result
    return result


def read_request(sock, pending, base_environ):
    """Parse one request from `pending` (receiving more as needed) into a copy of
    `base_environ`. Returns (environ, is_head, http11, keep_alive, streaming,
    rest_of_pending); `streaming` is the wsgi.input whose body is still on the
    socket, else None."""
    # Skip empty lines before a request (RFC 9112 2.2).
    if pending[:2] == b"\r\n":
        pending = pending.lstrip(b"\r\n")
    hend = pending.find(b"\r\n\r\n")
    while hend < 0:
        if len(pending) > MAX_HEAD:
            raise BadRequest(431, "request head too large")
        pending = recv_more(sock, pending)
        if pending[:2] == b"\r\n":
            pending = pending.lstrip(b"\r\n")
        hend = pending.find(b"\r\n\r\n", max(0, len(pending) - RECV_SIZE - 3))
    if hend > MAX_HEAD:
        raise BadRequest(431, "request head too large")

    line_end = pending.find(b"\r\n")  # <= hend
    request_line = pending[:line_end]
    parts = request_line.split(b" ")
    if len(parts) != 3:
        raise BadRequest(400, "malformed request line %r" % request_line[:200])
    method, target, version = parts
    if version == b"HTTP/1.1":
        http11 = True
    elif version == b"HTTP/1.0":
        http11 = False
    elif version.startswith(b"HTTP/"):
        raise BadRequest(505, "unsupported version %r" % version[:20])
    else:
        raise BadRequest(400, "malformed request line %r" % request_line[:200])
    if method not in _COMMON_METHODS and (not method or not all(c in _TCHAR for c in method)) or not target:
        raise BadRequest(400, "malformed request line %r" % request_line[:200])

    environ = base_environ.copy()
    if hend > line_end:
        # The header section decoded once; names and values are latin-1 str.
        key_cache = _key_cache
        for line in pending[line_end + 2:hend].decode("latin-1").split("\r\n"):
            i = line.find(":")
            if i <= 0:
                raise BadRequest(400, "malformed header line %r" % line[:200].encode("latin-1"))
            name = line[:i]
            key = key_cache.get(name)
            if key is None:
                key = _environ_key(name)
            if key is _SKIP:
                continue
            value = line[i + 1:].strip(" \t")
            if key in environ:
                environ[key] += ("; " if key == "HTTP_COOKIE" else ",") + value
            else:
                environ[key] = value

    method_s = method.decode("latin-1")
    environ["REQUEST_METHOD"] = method_s
    environ["SERVER_PROTOCOL"] = "HTTP/1.1" if http11 else "HTTP/1.0"
    environ["REQUEST_URI"] = target.decode("latin-1")
    if target[:1] != b"/" and (target.startswith(b"http://") or target.startswith(b"https://")):
        slash = target.find(b"/", target.find(b"//") + 2)
        target = target[slash:] if slash >= 0 else b"/"
    path, _, query = target.partition(b"?")
    environ["PATH_INFO"] = (unquote_to_bytes(path) if b"%" in path else path).decode("latin-1")
    environ["QUERY_STRING"] = query.decode("latin-1")

    proto = environ.get("HTTP_X_FORWARDED_PROTO")
    if proto is not None:
        proto = proto.split(",", 1)[0].strip().lower()
        scheme = proto if proto in ("http", "https") else "http"
    else:
        scheme = "http"
    environ["wsgi.url_scheme"] = scheme
    if scheme == "https":
        # CGI's flag for a secure request, which some frameworks read instead.
        environ["HTTPS"] = "on"
    environ["SERVER_NAME"], environ["SERVER_PORT"] = _server_name_port(environ.get("HTTP_HOST"), scheme)
    xff = environ.get("HTTP_X_FORWARDED_FOR")
    remote = xff.rsplit(",", 1)[-1].strip() if xff else ""
    environ["REMOTE_ADDR"] = remote or "127.0.0.1"

    conn_hdr = environ.get("HTTP_CONNECTION")
    if conn_hdr is None:
        keep = http11
    else:
        tokens = [t.strip() for t in conn_hdr.lower().split(",")]
        keep = "close" not in tokens and (http11 or "keep-alive" in tokens)

    # Request body.
    body_start = hend + 4
    streaming = None
    te = environ.get("HTTP_TRANSFER_ENCODING")
    if te is not None:
        codings = [t.strip() for t in te.lower().split(",")]
        if codings[-1] != "chunked":
            raise BadRequest(501, "unsupported transfer-encoding %r" % te)
        body, pending = read_chunked(sock, pending, body_start)
        environ["CONTENT_LENGTH"] = str(len(body))
        environ["wsgi.input"] = io.BytesIO(body)
    else:
        cl = environ.get("CONTENT_LENGTH")
        length = 0
        if cl is not None:
            if "," in cl:  # repeated header: all values must agree
                values = set(v.strip() for v in cl.split(","))
                if len(values) != 1:
                    raise BadRequest(400, "conflicting Content-Length values")
                cl = environ["CONTENT_LENGTH"] = values.pop()
            if not (cl.isascii() and cl.isdigit()) or len(cl) > 18:
                raise BadRequest(400, "invalid Content-Length %r" % cl[:40])
            length = int(cl)
        streaming, pending = read_body(sock, environ, pending, body_start, length)

    return environ, method == b"HEAD", http11, keep, streaming, pending
