"""ferry-bench's hello-world WSGI app, used only when examples/hello-wsgi is missing."""

import os


def application(environ, start_response):
    body = ("Hello from ferry-bench! (pid %d)\n" % os.getpid()).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
