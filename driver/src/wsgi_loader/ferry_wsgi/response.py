"""The response: start_response and write() (PEP 3333), the framing of the body
(the app's Content-Length, a computed one, chunked, or close-delimited), and
sending it, including a 500 for an app error before the head went out."""

import sys
import traceback

from . import ClientGone, log, shutdown
from .file_wrapper import FileWrapper, send_file

_NONE, _LENGTH, _CHUNKED, _CLOSE = range(4)

ERROR_REASONS = {
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


def simple_response(status, body, keep, head_only=False):
    return (
        "HTTP/1.1 %s\r\nContent-Type: text/plain; charset=utf-8\r\n"
        "Content-Length: %d\r\n%s\r\n" % (status, len(body), "" if keep else "Connection: close\r\n")
    ).encode("latin-1") + (b"" if head_only else body)



def run_app(app, development, sock, environ, is_head, http11, keep):
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
            raise ClientGone(e)

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
        if not keep or app_close or framing == _CLOSE or shutdown.stop:
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
        result = app(environ, start_response)
        sendable = result.sendable() if type(result) is FileWrapper and not sent else None
        if sendable is not None:
            if status_headers is None:
                raise AssertionError("the application returned without calling start_response()")
            fd, offset, size = sendable
            # With the size known, the framing is a Content-Length (or no body).
            send(make_head(size))
            if framing == _LENGTH:
                left -= send_file(sock, fd, offset, min(size, left))
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
    except ClientGone:
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
            if development:
                body += b"\n" + tb.encode("utf-8", "replace")
            keep = keep and not shutdown.stop
            try:
                sendall(simple_response("500 Internal Server Error", body, keep, is_head))
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
