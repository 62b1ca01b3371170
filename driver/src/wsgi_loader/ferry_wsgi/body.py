"""Request bodies: a Content-Length body attached as wsgi.input (read before the app
is called up to SMALL_BODY, else lazily from the socket), and the decoding of a
chunked body (read fully before the app is called)."""

import io

from . import MAX_CHUNKED, MAX_HEAD, RECV_SIZE, SMALL_BODY, BadRequest

_HEXDIGITS = b"0123456789abcdefABCDEF"


class Input(object):
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


def read_body(sock, environ, pending, body_start, length):
    """Attach the `length` bytes of body starting at pending[body_start:] (the rest
    still on the socket) as environ's wsgi.input. Returns (streaming, rest_of_pending);
    `streaming` is the wsgi.input whose body is still on the socket, else None."""
    end = body_start + length
    if len(pending) >= end:
        environ["wsgi.input"] = io.BytesIO(pending[body_start:end])
        return None, pending[end:]
    if length <= SMALL_BODY:
        chunks = [pending[body_start:]]
        recv_exactly(sock, end - len(pending), chunks)
        environ["wsgi.input"] = io.BytesIO(b"".join(chunks))
        return None, b""
    streaming = Input(sock, pending[body_start:], length)
    environ["wsgi.input"] = streaming
    return streaming, b""


def recv_exactly(sock, need, parts):
    """Receive `need` more body bytes into the list `parts`."""
    while need:
        chunk = sock.recv(min(need, RECV_SIZE))
        if not chunk:
            raise ConnectionError("connection closed in the middle of a request body")
        parts.append(chunk)
        need -= len(chunk)


def recv_more(sock, data):
    chunk = sock.recv(RECV_SIZE)
    if not chunk:
        raise ConnectionError("connection closed in the middle of a request")
    return data + chunk


def read_chunked(sock, data, pos):
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
                raise BadRequest(400, "chunk-size line too long")
            data = recv_more(sock, data[pos:])
            pos = 0
        size_field = data[pos:i].split(b";", 1)[0].strip(b" \t")
        pos = i + 2
        if not size_field or len(size_field) > 15 or size_field.strip(_HEXDIGITS):
            raise BadRequest(400, "invalid chunk size")
        size = int(size_field, 16)
        if size == 0:
            # Trailer fields, up to the empty line.
            while True:
                while True:
                    i = data.find(b"\r\n", pos)
                    if i >= 0:
                        break
                    if len(data) - pos > MAX_HEAD:
                        raise BadRequest(431, "trailer section too large")
                    data = recv_more(sock, data[pos:])
                    pos = 0
                empty = i == pos
                pos = i + 2
                if empty:
                    return b"".join(parts), data[pos:]
        total += size
        if total > MAX_CHUNKED:
            raise BadRequest(413, "chunked request body too large")
        # Chunk data: take what is buffered, receive the rest directly.
        avail = len(data) - pos
        if avail >= size:
            parts.append(data[pos:pos + size])
            pos += size
        else:
            parts.append(data[pos:])
            recv_exactly(sock, size - avail, parts)
            data, pos = b"", 0
        while len(data) - pos < 2:
            data = recv_more(sock, data[pos:])
            pos = 0
        if data[pos:pos + 2] != b"\r\n":
            raise BadRequest(400, "chunk data not followed by CRLF")
        pos += 2
