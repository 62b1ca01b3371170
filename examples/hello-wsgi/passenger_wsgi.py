"""The hello-world WSGI app from ferry's README: `ferry start examples/hello-wsgi`.

    GET /            -> "Hello from ferry! (pid N)"
    GET /slow?ms=N   -> sleeps N milliseconds (default 1000, at most 60000), then
                        answers; a slow endpoint that makes ferry's pool grow.

Standard library only.
"""

import os
import time
from urllib.parse import parse_qs


def application(environ, start_response):
    path = environ.get("PATH_INFO") or "/"
    if path == "/":
        status = "200 OK"
        body = "Hello from ferry! (pid %d)\n" % os.getpid()
    elif path == "/slow":
        query = parse_qs(environ.get("QUERY_STRING", ""))
        try:
            ms = int(query.get("ms", ["1000"])[0])
        except ValueError:
            ms = 1000
        ms = max(0, min(ms, 60000))
        time.sleep(ms / 1000.0)
        status = "200 OK"
        body = "Slept %d ms in pid %d\n" % (ms, os.getpid())
    else:
        status = "404 Not Found"
        body = "Not found: %s\n" % path
    data = body.encode("utf-8")
    start_response(status, [
        ("Content-Type", "text/plain; charset=utf-8"),
        ("Content-Length", str(len(data))),
    ])
    return [data]
