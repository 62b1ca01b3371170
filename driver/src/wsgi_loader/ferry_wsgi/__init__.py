"""ferry's WSGI loader as a package: wsgi_loader.py (its entry script, beside this
package) loads the app and hands the listening socket to ``server.Server``.

    server       the connection loop: poll, receive, one request after the other (or a
                 thread per connection: the thread concurrency model)
    frame        a request as ferry sends it: a frame of environ variables, then the body
    request      an HTTP request head parsed into ``environ``; the body into wsgi.input
    body         wsgi.input (a body still on the socket read lazily); chunked decoding
    response     start_response / write, the response framing, sending it
    file_wrapper wsgi.file_wrapper, sent with os.sendfile when it is a regular file
    shutdown     SIGTERM / SIGINT: stop at once when idle, after the request when busy

This module holds what all of them share: the log line and the size limits.
"""

import sys

LOG_PREFIX = "ferry wsgi_loader: "

MAX_HEAD = 64 * 1024            # largest request head (or frame)
RECV_SIZE = 64 * 1024           # bytes per recv
SMALL_BODY = 1024 * 1024        # bodies up to this size are read fully before calling the app
DRAIN_LIMIT = 4 * 1024 * 1024   # unread body bytes we read and discard to keep a connection
MAX_CHUNKED = 1024 * 1024 * 1024  # largest chunked request body


def log(msg):
    sys.stderr.write(LOG_PREFIX + msg + "\n")


class BadRequest(Exception):
    """A malformed request: answered with `status` and the connection closed."""

    def __init__(self, status, detail):
        Exception.__init__(self, detail)
        self.status = status


class ClientGone(Exception):
    """The connection to ferry broke while sending a response."""
