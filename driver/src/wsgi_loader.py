#!/usr/bin/env python3
"""ferry's WSGI loader: runs one Python WSGI application process for ferry.

ferry embeds this file, writes it into its instance directory and starts
``python3 -u /path/to/wsgi_loader.py`` once per application process. The file
only needs the Python standard library (Python 3.8+).

Contract with ferry
===================

Environment (read at startup; nothing else is exported or changed):

``FERRY_SOCKET`` (required)
    Path of the Unix stream socket to bind and listen on. An existing file at
    that path is unlinked first. On a normal exit the socket file is removed
    again, if it is still the one this process created.
``FERRY_APP_ROOT`` (default: the current directory)
    The application directory. The loader chdirs there and puts it first on
    ``sys.path`` (the loader's own directory is removed from ``sys.path``).
``FERRY_STARTUP_FILE`` (default: ``passenger_wsgi.py``)
    The startup file, relative to the app root unless absolute. It is loaded
    as the module ``passenger_wsgi`` and must define a callable
    ``application``.
``FERRY_ENVIRONMENT`` (e.g. ``development`` / ``production``)
    With ``development``, the traceback of an application error is also put in
    the body of the 500 response (it always goes to stderr).

Exit statuses:
    0  after SIGTERM or SIGINT (see below);
    1  the startup file could not be loaded, has no callable ``application``,
       or the socket could not be bound (message and traceback on stderr);
    2  ``FERRY_SOCKET`` is missing.

Startup: load the app, then bind + listen. Readiness = the socket accepts
connections. A connection that is closed without sending a byte (ferry's
readiness probe) is handled quietly.

Protocol: HTTP/1.1 over the Unix socket, one request at a time, no threads.
Connections are kept alive and may carry many requests; several open
connections are multiplexed with poll() while idle, so an idle keep-alive
connection never blocks a new one. Requests may be pipelined. Request bodies
may use Content-Length or chunked. ``Expect: 100-continue`` is ignored (ferry
has already buffered the body). ``Connection: close`` (or HTTP/1.0 without
keep-alive) closes the connection after the response.

Environ (PEP 3333): REQUEST_METHOD, SCRIPT_NAME (''), PATH_INFO
(percent-decoded bytes as a latin-1 str), QUERY_STRING, REQUEST_URI (raw
target; extension), CONTENT_TYPE and CONTENT_LENGTH (when sent; for a chunked
request the loader decodes the body first and sets CONTENT_LENGTH to its
size), SERVER_NAME / SERVER_PORT (from Host; default 'localhost' and 80 or
443 by scheme), SERVER_PROTOCOL, SERVER_SOFTWARE ('ferry'), REMOTE_ADDR
(rightmost X-Forwarded-For entry, i.e. the one ferry added; else
'127.0.0.1'), HTTP_* for every other header (duplicates joined with ',', or
'; ' for Cookie; names containing '_' are dropped so that e.g.
``X_Forwarded_For`` cannot spoof HTTP_X_FORWARDED_FOR), wsgi.version (1, 0),
wsgi.url_scheme (X-Forwarded-Proto if http/https, else 'http'; ferry sends
its own unless the peer is a trusted proxy), HTTPS ('on' for https), wsgi.input,
wsgi.errors (sys.stderr), wsgi.multithread False, wsgi.multiprocess True,
wsgi.run_once False, wsgi.input_terminated True, wsgi.file_wrapper.

``wsgi.file_wrapper(filelike, block_size=8192)``: when the app returns one (and
has not called ``write()``) over a regular file with a descriptor, the rest of
the file from its current position goes out with ``os.sendfile`` under a
Content-Length (the app's, if smaller, wins); its bytes never pass through
Python. Any other file-like is iterated with ``read(block_size)``. Its
``close()`` closes the file.

Response framing: the app's Content-Length if it gave one (extra bytes are
dropped; too few bytes close the connection); else, for a list/tuple result,
a computed Content-Length (the whole response goes out in one send); else
``Transfer-Encoding: chunked`` (HTTP/1.0: close-delimited). HEAD, 1xx, 204
and 304 responses have no body. Headers go out with the first non-empty body
chunk, or at the end. Hop-by-hop Transfer-Encoding / Connection headers from
the app are dropped (Connection: close is honoured). ``close()`` of the
result is always called.

Errors: an exception before the headers were sent gives
``500 Internal Server Error`` (traceback on stderr) and the connection stays
usable; an exception after the headers were sent is logged and the connection
is closed, so ferry sees a truncated body. A malformed request gets 400 (431,
501, 505 where fitting) and the connection is closed.

Signals: SIGTERM / SIGINT finish the request being served (its response
carries ``Connection: close``), then exit 0; when idle, exit 0 at once.

stdout / stderr are line-buffered: ferry forwards them line by line.
"""

import importlib.util
import io
import os
import select
import signal
import socket
import stat
import sys
import traceback
from urllib.parse import unquote_to_bytes

LOG_PREFIX = "ferry wsgi_loader: "

MAX_HEAD = 64 * 1024            # largest request head
RECV_SIZE = 64 * 1024           # bytes per recv
SMALL_BODY = 1024 * 1024        # bodies up to this size are read fully before calling the app
DRAIN_LIMIT = 4 * 1024 * 1024   # unread body bytes we read and discard to keep a connection
MAX_CHUNKED = 1024 * 1024 * 1024  # largest chunked request body


def log(msg):
    sys.stderr.write(LOG_PREFIX + msg + "\n")


# --------------------------------------------------------------------------
# Signals: stop at once when idle, after the current request when busy.

_busy = False
_stop = False


class _Stop(BaseException):
    """Raised by the signal handler to leave an idle wait."""


def _on_signal(signum, frame):
    global _stop
    _stop = True
    if not _busy:
        raise _Stop()


# --------------------------------------------------------------------------
# Request parsing.


class _BadRequest(Exception):
    def __init__(self, status, detail):
        Exception.__init__(self, detail)
        self.status = status


class _ClientGone(Exception):
    """The connection to ferry broke while sending a response."""


_TCHAR = frozenset(b"!#$%&'*+-.^_`|~0123456789"
                   b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
_TCHAR_STR = frozenset(chr(c) for c in _TCHAR)
_HEXDIGITS = b"0123456789abcdefABCDEF"
_COMMON_METHODS = frozenset((b"GET", b"HEAD", b"POST", b"PUT", b"DELETE", b"PATCH", b"OPTIONS"))
_SKIP = ""  # environ key for header names that are dropped
_key_cache = {}  # header name (latin-1 str) -> environ key or _SKIP


def _environ_key(name):
    """Environ key for a header name (decoded as latin-1), or _SKIP. Raises
    _BadRequest. The caller looks in _key_cache first."""
    if not name or not all(c in _TCHAR_STR for c in name):
        raise _BadRequest(400, "invalid header name %r" % name.encode("latin-1"))
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


class _Input(object):
    """wsgi.input for a body that is still (partly) on the socket: reads at
    most the remaining Content-Length bytes, lazily."""

    __slots__ = ("_sock", "_buf", "left")

    def __init__(self, sock, initial, length):
        self._sock = sock
        self._buf = initial
        self.left = length - len(initial)  # bytes not received yet

    def _recv(self):
        try:
            data = self._sock.recv(min(self.left, RECV_SIZE))
        except OSError as e:
            raise ConnectionError("connection lost while reading the request body: %s" % e)
        if not data:
            raise ConnectionError("connection closed while reading the request body")
        self.left -= len(data)
        return data

    def read(self, size=-1):
        if size is None or size < 0:
            parts = [self._buf]
            while self.left:
                parts.append(self._recv())
            self._buf = b""
            return b"".join(parts)
        if len(self._buf) < size and self.left:
            parts = [self._buf]
            have = len(self._buf)
            while have < size and self.left:
                data = self._recv()
                parts.append(data)
                have += len(data)
            self._buf = b"".join(parts)
        out = self._buf[:size]
        self._buf = self._buf[size:]
        return out

    def readline(self, size=-1):
        if size is None:
            size = -1
        scanned = 0
        while True:
            i = self._buf.find(b"\n", scanned)
            if i >= 0 and (size < 0 or i < size):
                cut = i + 1
                break
            if size >= 0 and len(self._buf) >= size:
                cut = size
                break
            if not self.left:
                cut = len(self._buf)
                break
            scanned = len(self._buf)
            self._buf += self._recv()
        out = self._buf[:cut]
        self._buf = self._buf[cut:]
        return out

    def readlines(self, hint=-1):
        lines = []
        total = 0
        while True:
            line = self.readline()
            if not line:
                return lines
            lines.append(line)
            total += len(line)
            if hint is not None and 0 < hint <= total:
                return lines

    def __iter__(self):
        return self

    def __next__(self):
        line = self.readline()
        if not line:
            raise StopIteration
        return line

    def close(self):
        pass

    def drain(self):
        """Receive and discard the rest of the body."""
        self._buf = b""
        while self.left:
            self._recv()


class _FileWrapper(object):
    """wsgi.file_wrapper (PEP 3333): iterates over a file-like in blocks. When the
    app returns one whose file has a real descriptor on a regular file, the loader
    sends the file with os.sendfile instead, without its bytes passing through
    Python."""

    __slots__ = ("filelike", "block_size")

    def __init__(self, filelike, block_size=8192):
        self.filelike = filelike
        self.block_size = block_size

    def __iter__(self):
        read, size = self.filelike.read, self.block_size
        while True:
            data = read(size)
            if not data:
                return
            yield data

    def close(self):
        close = getattr(self.filelike, "close", None)
        if close is not None:
            close()

    def sendable(self):
        """(fd, offset, size) of the rest of a regular file, or None (iterate)."""
        try:
            fd = self.filelike.fileno()
            st = os.fstat(fd)
        except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is both
            return None
        if not stat.S_ISREG(st.st_mode):
            return None
        tell = getattr(self.filelike, "tell", None)
        try:
            offset = tell() if tell is not None else os.lseek(fd, 0, os.SEEK_CUR)
        except (OSError, ValueError):
            return None
        return fd, offset, max(0, st.st_size - offset)


def _recv_more(sock, data):
    chunk = sock.recv(RECV_SIZE)
    if not chunk:
        raise ConnectionError("connection closed in the middle of a request")
    return data + chunk


def _read_chunked(sock, data, pos):
    """Decode a chunked body starting at data[pos:]. Returns (body, rest)."""
    parts = []
    total = 0
    while True:
        # Chunk-size line.
        while True:
            i = data.find(b"\r\n", pos)
            if i >= 0:
                break
            if len(data) - pos > 8192:
                raise _BadRequest(400, "chunk-size line too long")
            data = _recv_more(sock, data[pos:])
            pos = 0
        size_field = data[pos:i].split(b";", 1)[0].strip(b" \t")
        pos = i + 2
        if not size_field or len(size_field) > 15 or size_field.strip(_HEXDIGITS):
            raise _BadRequest(400, "invalid chunk size")
        size = int(size_field, 16)
        if size == 0:
            # Trailer fields, up to the empty line.
            while True:
                while True:
                    i = data.find(b"\r\n", pos)
                    if i >= 0:
                        break
                    if len(data) - pos > MAX_HEAD:
                        raise _BadRequest(431, "trailer section too large")
                    data = _recv_more(sock, data[pos:])
                    pos = 0
                empty = i == pos
                pos = i + 2
                if empty:
                    return b"".join(parts), data[pos:]
        total += size
        if total > MAX_CHUNKED:
            raise _BadRequest(413, "chunked request body too large")
        # Chunk data: take what is buffered, receive the rest directly.
        avail = len(data) - pos
        if avail >= size:
            parts.append(data[pos:pos + size])
            pos += size
        else:
            parts.append(data[pos:])
            need = size - avail
            while need:
                chunk = sock.recv(min(need, RECV_SIZE))
                if not chunk:
                    raise ConnectionError("connection closed in the middle of a request body")
                parts.append(chunk)
                need -= len(chunk)
            data, pos = b"", 0
        while len(data) - pos < 2:
            data = _recv_more(sock, data[pos:])
            pos = 0
        if data[pos:pos + 2] != b"\r\n":
            raise _BadRequest(400, "chunk data not followed by CRLF")
        pos += 2


# --------------------------------------------------------------------------
# Responses.


def _send_file(sock, fd, offset, count):
    """Sends `count` bytes of file `fd` from `offset` with os.sendfile; returns how
    many went out (fewer if the file ended early)."""
    out = sock.fileno()
    sent = 0
    try:
        while sent < count:
            n = os.sendfile(out, fd, offset + sent, count - sent)
            if n == 0:
                break
            sent += n
    except OSError as e:
        raise _ClientGone(e)
    return sent


_NONE, _LENGTH, _CHUNKED, _CLOSE = range(4)

_ERROR_REASONS = {
    400: "Bad Request",
    413: "Content Too Large",
    431: "Request Header Fields Too Large",
    501: "Not Implemented",
    505: "HTTP Version Not Supported",
}


# Response header names already checked (no CR, LF or ':'), and the lengths of
# the names the loader itself handles: Connection, Content-Length,
# Transfer-Encoding.
_good_names = set()
_FRAMING_NAME_LENGTHS = frozenset((10, 14, 17))


def _simple_response(status, body, keep, head_only=False):
    return (
        "HTTP/1.1 %s\r\nContent-Type: text/plain; charset=utf-8\r\n"
        "Content-Length: %d\r\n%s\r\n" % (status, len(body), "" if keep else "Connection: close\r\n")
    ).encode("latin-1") + (b"" if head_only else body)


class _Server(object):
    def __init__(self, app, development):
        self.app = app
        self.development = development
        self.rbuf = bytearray(RECV_SIZE)
        self.base_environ = {
            "SCRIPT_NAME": "",
            "SERVER_SOFTWARE": "ferry",
            "wsgi.version": (1, 0),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": False,
            "wsgi.multiprocess": True,
            "wsgi.run_once": False,
            "wsgi.input_terminated": True,
            "wsgi.file_wrapper": _FileWrapper,
        }

    # -- connection level --------------------------------------------------

    def serve_forever(self, listener):
        global _busy
        poller = select.poll()
        lfd = listener.fileno()
        poller.register(lfd, select.POLLIN)
        conns = {}  # fd -> [socket, pending bytes]
        try:
            while True:
                _busy = False
                if _stop:
                    return
                for fd, _ in poller.poll():
                    if fd == lfd:
                        try:
                            sock, _ = listener.accept()
                        except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                            continue
                        conns[sock.fileno()] = [sock, b""]
                        poller.register(sock, select.POLLIN)
                        continue
                    entry = conns.get(fd)
                    if entry is None:
                        continue
                    _busy = True
                    if not self.serve_ready(entry):
                        poller.unregister(fd)
                        del conns[fd]
                        entry[0].close()
                    _busy = False
                    if _stop:
                        return
        finally:
            for entry in conns.values():
                entry[0].close()

    def serve_ready(self, entry):
        """The connection is readable: receive, then serve every complete
        request. Returns False when the connection must be closed."""
        sock = entry[0]
        rbuf = self.rbuf
        try:
            n = sock.recv_into(rbuf)
        except OSError:
            return False
        if not n:
            return False  # closed (e.g. ferry's readiness probe)
        pending = entry[1] + rbuf[:n] if entry[1] else bytes(rbuf[:n])
        while True:
            try:
                keep, pending = self.handle_request(sock, pending)
            except _BadRequest as e:
                status = "%d %s" % (e.status, _ERROR_REASONS.get(e.status, "Bad Request"))
                log("bad request: %s" % e)
                try:
                    sock.sendall(_simple_response(status, (status + "\n").encode(), False))
                except OSError:
                    pass
                return False
            except (ConnectionError, _ClientGone, OSError):
                return False
            if not keep or _stop:
                return False
            if pending and not pending.strip(b"\r\n"):
                pending = b""  # stray CRLF after a request
            if not pending:
                entry[1] = b""
                return True
            # Pipelined bytes: serve the next request if its head is complete,
            # else keep them and wait (in poll) for the rest.
            if pending.find(b"\r\n\r\n") < 0 and len(pending) < MAX_HEAD:
                entry[1] = pending
                return True

    # -- request level -----------------------------------------------------

    def handle_request(self, sock, pending):
        """Parse and answer one request from `pending` (receiving more as
        needed). Returns (keep_alive, rest_of_pending)."""
        # Skip empty lines before a request (RFC 9112 2.2).
        if pending[:2] == b"\r\n":
            pending = pending.lstrip(b"\r\n")
        hend = pending.find(b"\r\n\r\n")
        while hend < 0:
            if len(pending) > MAX_HEAD:
                raise _BadRequest(431, "request head too large")
            pending = _recv_more(sock, pending)
            if pending[:2] == b"\r\n":
                pending = pending.lstrip(b"\r\n")
            hend = pending.find(b"\r\n\r\n", max(0, len(pending) - RECV_SIZE - 3))
        if hend > MAX_HEAD:
            raise _BadRequest(431, "request head too large")

        line_end = pending.find(b"\r\n")  # <= hend
        request_line = pending[:line_end]
        parts = request_line.split(b" ")
        if len(parts) != 3:
            raise _BadRequest(400, "malformed request line %r" % request_line[:200])
        method, target, version = parts
        if version == b"HTTP/1.1":
            http11 = True
        elif version == b"HTTP/1.0":
            http11 = False
        elif version.startswith(b"HTTP/"):
            raise _BadRequest(505, "unsupported version %r" % version[:20])
        else:
            raise _BadRequest(400, "malformed request line %r" % request_line[:200])
        if method not in _COMMON_METHODS and (not method or not all(c in _TCHAR for c in method)) or not target:
            raise _BadRequest(400, "malformed request line %r" % request_line[:200])

        environ = self.base_environ.copy()
        if hend > line_end:
            # The header section decoded once; names and values are latin-1 str.
            key_cache = _key_cache
            for line in pending[line_end + 2:hend].decode("latin-1").split("\r\n"):
                i = line.find(":")
                if i <= 0:
                    raise _BadRequest(400, "malformed header line %r" % line[:200].encode("latin-1"))
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
                raise _BadRequest(501, "unsupported transfer-encoding %r" % te)
            body, pending = _read_chunked(sock, pending, body_start)
            environ["CONTENT_LENGTH"] = str(len(body))
            environ["wsgi.input"] = io.BytesIO(body)
        else:
            cl = environ.get("CONTENT_LENGTH")
            length = 0
            if cl is not None:
                if "," in cl:  # repeated header: all values must agree
                    values = set(v.strip() for v in cl.split(","))
                    if len(values) != 1:
                        raise _BadRequest(400, "conflicting Content-Length values")
                    cl = environ["CONTENT_LENGTH"] = values.pop()
                if not (cl.isascii() and cl.isdigit()) or len(cl) > 18:
                    raise _BadRequest(400, "invalid Content-Length %r" % cl[:40])
                length = int(cl)
            end = body_start + length
            if len(pending) >= end:
                environ["wsgi.input"] = io.BytesIO(pending[body_start:end])
                pending = pending[end:]
            elif length <= SMALL_BODY:
                chunks = [pending[body_start:]]
                need = end - len(pending)
                while need:
                    chunk = sock.recv(min(need, RECV_SIZE))
                    if not chunk:
                        raise ConnectionError("connection closed in the middle of a request body")
                    chunks.append(chunk)
                    need -= len(chunk)
                environ["wsgi.input"] = io.BytesIO(b"".join(chunks))
                pending = b""
            else:
                streaming = _Input(sock, pending[body_start:], length)
                environ["wsgi.input"] = streaming
                pending = b""

        keep = self.run_app(sock, environ, method == b"HEAD", http11, keep)

        if streaming is not None and streaming.left:
            if keep and streaming.left <= DRAIN_LIMIT:
                streaming.drain()
            else:
                keep = False
        return keep, pending

    def run_app(self, sock, environ, is_head, http11, keep):
        """Call the application and send its response. Returns keep-alive."""
        status_headers = None
        sent = False
        framing = _NONE
        left = 0
        app_close = False
        sendall = sock.sendall

        def send(data):
            try:
                sendall(data)
            except OSError as e:
                raise _ClientGone(e)

        def make_head(total):
            # Build the response head; decide the body framing. `total` is
            # the body size when known.
            nonlocal sent, framing, left, app_close
            status, headers = status_headers
            code = int(status[:3])
            no_body = is_head or code < 200 or code == 204 or code == 304
            out = ["HTTP/1.1 ", status, "\r\n"]
            app_cl = None
            for name, value in headers:
                if type(name) is not str or type(value) is not str:
                    raise TypeError("response header names and values must be str: %r" % ((name, value),))
                if name not in _good_names:
                    if "\n" in name or "\r" in name or ":" in name:
                        raise ValueError("invalid response header %r" % ((name, value),))
                    if len(_good_names) < 2000:
                        _good_names.add(name)
                if len(name) in _FRAMING_NAME_LENGTHS:
                    lname = name.lower()
                    if lname == "content-length":
                        app_cl = value.strip()
                        if not (app_cl.isascii() and app_cl.isdigit()):
                            raise ValueError("invalid Content-Length header %r" % value)
                        app_cl = int(app_cl)
                    elif lname == "transfer-encoding":
                        continue
                    elif lname == "connection":
                        if "close" in value.lower():
                            app_close = True
                        continue
                if "\n" in value or "\r" in value:
                    raise ValueError("invalid response header %r" % ((name, value),))
                out += (name, ": ", value, "\r\n")
            if no_body:
                framing = _NONE
                if is_head and app_cl is None and total is not None and 200 <= code and code not in (204, 304):
                    out.append("Content-Length: %d\r\n" % total)
            elif app_cl is not None:
                framing = _LENGTH
                left = app_cl
            elif total is not None:
                framing = _LENGTH
                left = total
                out.append("Content-Length: %d\r\n" % total)
            elif http11:
                framing = _CHUNKED
                out.append("Transfer-Encoding: chunked\r\n")
            else:
                framing = _CLOSE
            if not keep or app_close or framing == _CLOSE or _stop:
                out.append("Connection: close\r\n\r\n")
            elif not http11:
                out.append("Connection: keep-alive\r\n\r\n")
            else:
                out.append("\r\n")
            head = "".join(out).encode("latin-1")
            sent = True
            return head

        def frame(data):
            # Body bytes as they go on the wire.
            nonlocal left
            if framing == _CHUNKED:
                return b"%x\r\n%s\r\n" % (len(data), data)
            if framing == _LENGTH:
                if len(data) > left:
                    data = data[:left]
                left -= len(data)
                return data
            if framing == _CLOSE:
                return data
            return b""

        def write(data):
            if status_headers is None:
                raise AssertionError("write() called before start_response()")
            if not isinstance(data, (bytes, bytearray)):
                raise TypeError("write() argument must be bytes, not %s" % type(data).__name__)
            if not sent:
                head = make_head(None)
                send(head + frame(bytes(data)) if data else head)
            elif data:
                out = frame(bytes(data))
                if out:
                    send(out)

        def start_response(status, headers, exc_info=None):
            nonlocal status_headers
            if exc_info:
                try:
                    if sent:
                        raise exc_info[1].with_traceback(exc_info[2])
                finally:
                    exc_info = None
            elif status_headers is not None:
                raise AssertionError("start_response() called a second time without exc_info")
            if type(status) is not str:
                raise TypeError("status must be a str, not %s" % type(status).__name__)
            if len(status) < 3 or not status[:3].isdigit() or "\n" in status or "\r" in status:
                raise ValueError("invalid status %r" % status)
            if not isinstance(headers, (list, tuple)):
                raise TypeError("response_headers must be a list, not %s" % type(headers).__name__)
            status_headers = (status, headers)
            return write

        result = None
        try:
            result = self.app(environ, start_response)
            sendable = result.sendable() if type(result) is _FileWrapper and not sent else None
            if sendable is not None:
                if status_headers is None:
                    raise AssertionError("the application returned without calling start_response()")
                fd, offset, size = sendable
                # With the size known, the framing is a Content-Length (or no body).
                send(make_head(size))
                if framing == _LENGTH:
                    left -= _send_file(sock, fd, offset, min(size, left))
            elif (type(result) is list or type(result) is tuple) and not sent:
                body = b"".join(result)
                if status_headers is None:
                    raise AssertionError("the application returned without calling start_response()")
                head = make_head(len(body))
                if framing == _LENGTH:
                    if len(body) > left:
                        body = body[:left]
                    left -= len(body)
                else:
                    body = b""
                send(head + body)
            else:
                for data in result:
                    if not data:
                        continue
                    if not sent:
                        if status_headers is None:
                            raise AssertionError("the application yielded data before calling start_response()")
                        send(make_head(None) + frame(data))
                    else:
                        out = frame(data)
                        if out:
                            send(out)
                if not sent:
                    if status_headers is None:
                        raise AssertionError("the application returned without calling start_response()")
                    send(make_head(0))
                if framing == _CHUNKED:
                    send(b"0\r\n\r\n")
            if framing == _LENGTH and left:
                log("response shorter than its Content-Length (%d bytes missing); closing the connection" % left)
                keep = False
        except _ClientGone:
            keep = False
        except Exception:
            tb = traceback.format_exc()
            sys.stderr.write(tb)
            if sent:
                log("error after the response head was sent; closing the connection")
                keep = False
            else:
                log("application error; answering 500 Internal Server Error")
                body = b"Internal Server Error\n"
                if self.development:
                    body += b"\n" + tb.encode("utf-8", "replace")
                keep = keep and not _stop
                try:
                    sendall(_simple_response("500 Internal Server Error", body, keep, is_head))
                except OSError:
                    keep = False
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                try:
                    close()
                except Exception:
                    sys.stderr.write(traceback.format_exc())
                    log("error in the close() method of the response")
        return keep and not app_close and framing != _CLOSE


# --------------------------------------------------------------------------
# Startup.


def _load_app(startup_file):
    if not os.path.isfile(startup_file):
        log("error: startup file %s does not exist" % startup_file)
        return None
    try:
        spec = importlib.util.spec_from_file_location("passenger_wsgi", startup_file)
        if spec is None or spec.loader is None:
            log("error: cannot load startup file %s (not a Python file?)" % startup_file)
            return None
        module = importlib.util.module_from_spec(spec)
        sys.modules["passenger_wsgi"] = module
        spec.loader.exec_module(module)
    except _Stop:
        raise
    except BaseException:
        sys.stderr.write(traceback.format_exc())
        log("error: loading startup file %s failed (traceback above)" % startup_file)
        return None
    app = getattr(module, "application", None)
    if app is None:
        log("error: startup file %s does not define 'application' "
            "(it must set a WSGI callable named 'application')" % startup_file)
        return None
    if not callable(app):
        log("error: 'application' in %s is not callable (got %s)" % (startup_file, type(app).__name__))
        return None
    return app


def main():
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.reconfigure(line_buffering=True)
        except (AttributeError, ValueError):
            pass
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)

    socket_path = os.environ.get("FERRY_SOCKET")
    if not socket_path:
        log("error: FERRY_SOCKET is not set (path of the Unix socket to listen on)")
        return 2
    app_root = os.path.abspath(os.environ.get("FERRY_APP_ROOT") or os.getcwd())
    startup_file = os.path.join(app_root, os.environ.get("FERRY_STARTUP_FILE") or "passenger_wsgi.py")
    socket_path = os.path.abspath(socket_path)

    try:
        os.chdir(app_root)
    except OSError as e:
        log("error: cannot chdir to FERRY_APP_ROOT %s: %s" % (app_root, e))
        return 1
    # Running as `python3 /instance/wsgi_loader.py` puts /instance first on
    # sys.path: replace it by the app root.
    argv0 = sys.argv[0] if sys.argv else ""
    if argv0 not in ("", "-", "-c") and sys.path and sys.path[0] == os.path.dirname(os.path.abspath(argv0)):
        del sys.path[0]
    sys.path.insert(0, app_root)

    app = _load_app(startup_file)
    if app is None:
        return 1

    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        try:
            os.unlink(socket_path)
        except FileNotFoundError:
            pass
        listener.bind(socket_path)
        listener.listen(128)
        inode = os.stat(socket_path).st_ino
    except OSError as e:
        log("error: cannot listen on %s: %s" % (socket_path, e))
        return 1
    try:
        server = _Server(app, os.environ.get("FERRY_ENVIRONMENT") == "development")
        server.serve_forever(listener)
    finally:
        listener.close()
        try:
            if os.stat(socket_path).st_ino == inode:
                os.unlink(socket_path)
        except OSError:
            pass
    return 0


if __name__ == "__main__":
    try:
        status = main()
    except _Stop:
        status = 0
    sys.exit(status)
