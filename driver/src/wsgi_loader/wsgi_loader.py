#!/usr/bin/env python3
"""ferry's WSGI loader: runs one Python WSGI application process for ferry.

ferry embeds this script and the package ``ferry_wsgi`` beside it, writes both
into a directory of its own inside its instance directory at start, and runs
``python3 -u /path/to/wsgi_loader.py`` once per application process. They only
need the Python standard library (Python 3.8+). This script loads the app; the
package serves it (its ``__init__`` lists its modules).

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
``FERRY_CONCURRENCY_MODEL`` (``process``, the default, or ``thread``)
    ``process``: one request at a time, no threads. ``thread``
    (``--concurrency-model thread``): each connection from ferry is served in a
    thread of its own, so the process serves as many requests at once as ferry
    sends it (``--thread-count``); ``wsgi.multithread`` is then True and the app
    must be thread-safe.

Exit statuses:
    0  after SIGTERM or SIGINT (see below);
    1  the startup file could not be loaded, has no callable ``application``,
       or the socket could not be bound (message and traceback on stderr);
    2  ``FERRY_SOCKET`` is missing, or ``FERRY_CONCURRENCY_MODEL`` is neither
       ``process`` nor ``thread``.

Startup: load the app, then bind + listen. Readiness = the socket accepts
connections. A connection that is closed without sending a byte (ferry's
readiness probe) is handled quietly.

Protocol: over the Unix socket, one request at a time per connection. ferry sends
each request as a frame of the environ variables below, already worked out
(http/src/wsgi_frame.rs writes it and documents its layout; ferry_wsgi/frame.py
reads it), followed by the body (CONTENT_LENGTH bytes); anything else may send
HTTP/1.1. The two are told apart per request by its first byte: a frame starts
with 0x00, which no HTTP request does. Responses are HTTP/1.1 either way.
Connections are kept alive and may carry many requests; several open
connections are multiplexed with poll() while idle (in the thread model, each
has its thread), so an idle keep-alive connection never blocks a new one.
Requests may be pipelined, frames and HTTP mixed. HTTP request bodies may use
Content-Length or chunked. ``Expect: 100-continue`` is ignored (ferry has
already buffered the body). ``Connection: close`` (or HTTP/1.0 without
keep-alive) closes the connection after the response; a frame says keep-alive,
HEAD and HTTP/1.1 in its flags instead.

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
wsgi.errors (sys.stderr), wsgi.multithread (False; True in the thread model),
wsgi.multiprocess True, wsgi.run_once False, wsgi.input_terminated True, wsgi.file_wrapper. A frame
carries the variables derived from the request (all but SCRIPT_NAME,
SERVER_SOFTWARE and the wsgi.* ones, wsgi.url_scheme aside), worked out by ferry
by these same rules from the fields it would have sent; only PATH_INFO comes raw
and is percent-decoded here.

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
carries ``Connection: close``), then exit 0; when idle, exit 0 at once. In the
thread model, every request being served is finished and the threads waiting
on idle connections leave at once.

stdout / stderr are line-buffered: ferry forwards them line by line.
"""

import importlib.util
import os
import socket
import sys
import traceback

LOG_PREFIX = "ferry wsgi_loader: "


def log(msg):
    sys.stderr.write(LOG_PREFIX + msg + "\n")


# The package sits beside this script, so it is imported from sys.path[0] before
# main() replaces that entry by the app root. A loader file that does not compile
# or import is ferry's bug, not the app's: say so in the last line of the output,
# which ferry shows as the process's start error.
try:
    from ferry_wsgi import shutdown
    from ferry_wsgi.server import Server
except Exception as e:
    sys.stderr.write(traceback.format_exc())
    log("error: ferry's WSGI loader package (ferry_wsgi, beside %s) failed to import: %s: %s; "
        "this is a bug in ferry, not in the app" % (os.path.abspath(__file__), type(e).__name__, e))
    sys.exit(1)


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
    except shutdown.Stop:
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
    shutdown.install()

    socket_path = os.environ.get("FERRY_SOCKET")
    if not socket_path:
        log("error: FERRY_SOCKET is not set (path of the Unix socket to listen on)")
        return 2
    model = os.environ.get("FERRY_CONCURRENCY_MODEL") or "process"
    if model not in ("process", "thread"):
        log("error: FERRY_CONCURRENCY_MODEL is %r; it must be 'process' or 'thread'" % model)
        return 2
    threaded = model == "thread"
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
        server = Server(app, os.environ.get("FERRY_ENVIRONMENT") == "development", threaded)
        if threaded:
            server.serve_threads(listener)
        else:
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
    except shutdown.Stop:
        status = 0
    sys.exit(status)
