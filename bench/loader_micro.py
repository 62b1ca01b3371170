#!/usr/bin/env python3
"""The WSGI loader's own cost per request, without ferry, wrk or the scheduler.

Runs the loader's request handling (driver/src/wsgi_loader/ferry_wsgi) in this process on one end of a
Unix socketpair, on the exact request ferry forwards for `wrk http://127.0.0.1:PORT/`,
and prints microseconds of CPU per request for each app: the hello app, the Flask
JSON app (when Flask is importable), and a do-nothing app (the loader alone). Each is
timed twice: on the HTTP head ferry used to send (REQUEST) and on the frame it sends
now (FRAME, http/src/wsgi_frame.rs), for a loader that reads frames.

    bench/.venv/bin/python bench/loader_micro.py [REQUESTS [LOADER_DIR ...]]

A LOADER_DIR holds wsgi_loader.py and its ferry_wsgi package (default
driver/src/wsgi_loader), or is the single-file loader from before the split. With several (e.g. an older version from `git archive`), their rounds are
interleaved, so a busy machine skews them alike. The best and median round are
printed (CPU time of this process: the loader's Python plus its recv/send syscalls,
as in production).
"""

import importlib
import importlib.util
import os
import socket
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
# What ferry sends the loader for wrk's `GET /` (captured from a real run).
REQUEST = (b"GET / HTTP/1.1\r\nHost: 127.0.0.1:18931\r\nX-Forwarded-For: 127.0.0.1\r\n"
           b"X-Forwarded-Proto: http\r\nX-Forwarded-Host: 127.0.0.1:18931\r\n\r\n")
BATCH = 50  # requests between two drains of the response side
ROUNDS = 7


def load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_loader(name, loader_dir):
    """The loader's server module, its package imported under `name` so that several
    versions can be loaded side by side. A .py file is a loader from before the split
    into a package (e.g. `git show 06ef45b:driver/src/wsgi_loader.py`): one module
    whose server class is `_Server`."""
    if loader_dir.endswith(".py"):
        module = load(name, loader_dir)
        module.Server = module._Server
        return module
    package_dir = os.path.join(loader_dir, "ferry_wsgi")
    spec = importlib.util.spec_from_file_location(
        name, os.path.join(package_dir, "__init__.py"), submodule_search_locations=[package_dir])
    package = importlib.util.module_from_spec(spec)
    sys.modules[name] = package
    spec.loader.exec_module(package)
    return importlib.import_module(name + ".server")


def nothing_app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
    return [b"ok"]


def apps():
    yield "no-op app (loader only)", nothing_app
    hello = load("hello_app", os.path.join(REPO, "examples", "hello-wsgi", "passenger_wsgi.py"))
    yield "hello app", hello.application
    try:
        flask_app = load("flask_app", os.path.join(HERE, "templates", "flask_wsgi.py"))
    except ImportError as e:
        print("Flask app skipped: %s (run bench/install.sh and use bench/.venv/bin/python)" % e)
        return
    yield "Flask JSON app", flask_app.application


def one_round(server, ours, peer, requests, request):
    start = time.process_time()
    for i in range(requests):
        keep, rest = server.handle_request(ours, request)
        if not keep or rest:
            raise SystemExit("unexpected keep=%r rest=%r" % (keep, rest))
        if i % BATCH == BATCH - 1:
            try:
                while peer.recv(1 << 20):
                    pass
            except BlockingIOError:
                pass
    return (time.process_time() - start) / requests * 1e6


def measure(loaders, app, requests):
    """Per loader and request form it reads: (form, best, median) microseconds per
    request over interleaved rounds."""
    setups = []
    for loader in loaders:
        for form, request in forms(loader):
            ours, peer = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            peer.setblocking(False)
            setups.append((loader, form, request, loader.Server(app, False), ours, peer, []))
    try:
        for _ in range(ROUNDS):
            for _, _, request, server, ours, peer, rounds in setups:
                rounds.append(one_round(server, ours, peer, requests, request))
    finally:
        for setup in setups:
            setup[4].close()
            setup[5].close()
    return [(loader, form, min(r), statistics.median(r)) for loader, form, _, _, _, _, r in setups]


# The frame ferry sends its loader for the same request (http/src/wsgi_frame.rs; a Rust
# test there checks that these are its variables, byte for byte).
FRAME_FIELDS = [
    "HTTP_HOST", "127.0.0.1:18931", "HTTP_X_FORWARDED_FOR", "127.0.0.1",
    "HTTP_X_FORWARDED_PROTO", "http", "HTTP_X_FORWARDED_HOST", "127.0.0.1:18931",
    "REQUEST_METHOD", "GET", "SERVER_PROTOCOL", "HTTP/1.1", "REQUEST_URI", "/", "PATH_INFO", "/",
    "QUERY_STRING", "", "wsgi.url_scheme", "http", "SERVER_NAME", "127.0.0.1", "SERVER_PORT", "18931",
    "REMOTE_ADDR", "127.0.0.1"]
_VARIABLES = "\0".join(FRAME_FIELDS).encode("latin-1")
FRAME = b"\0" + (len(_VARIABLES) + 1).to_bytes(4, "big") + bytes([2 | 4]) + _VARIABLES


def reads_frames(loader):
    return hasattr(loader, "read_frame")


def forms(loader):
    """The request forms `loader` reads: HTTP always, the frame if it knows it."""
    yield "HTTP", REQUEST
    if reads_frames(loader):
        yield "frame", FRAME


def request_side(loader, requests):
    """Microseconds per request to turn the request into environ (the app and the
    response left out), per form the loader reads."""
    server = loader.Server(nothing_app, False)
    server.run_app = lambda sock, environ, is_head, http11, keep: keep

    def timed(request):
        start = time.process_time()
        for _ in range(requests):
            server.handle_request(None, request)
        return (time.process_time() - start) / requests * 1e6

    rounds = [[(form, timed(request)) for form, request in forms(loader)] for _ in range(ROUNDS)]
    return [(form, min(r[i][1] for r in rounds)) for i, (form, _) in enumerate(rounds[0])]


def main():
    requests = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
    paths = sys.argv[2:] or [os.path.join(REPO, "driver", "src", "wsgi_loader")]
    loaders = [load_loader("ferry_wsgi_%d" % i, p) for i, p in enumerate(paths)]
    print("Python %s, %d requests x %d rounds" % (sys.version.split()[0], requests, ROUNDS))
    where = {id(loader): os.path.relpath(path) for path, loader in zip(paths, loaders)}
    for name, app in apps():
        for loader, form, best, med in measure(loaders, app, requests):
            print("%-26s %-5s best %5.1f us/request, median %5.1f  %s"
                  % (name, form, best, med, where[id(loader)]))
    for path, loader in zip(paths, loaders):
        print("request -> environ only: %s  %s" % (
            ", ".join("%s %.1f us" % kv for kv in request_side(loader, requests)), os.path.relpath(path)))


if __name__ == "__main__":
    main()
