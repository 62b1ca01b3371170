"""Tests for ferry's WSGI loader (driver/src/wsgi_loader/: wsgi_loader.py and ferry_wsgi).

Run from the repository root:

    python3 -m unittest discover -s tests/wsgi -v

Each test starts the loader as a subprocess on a temporary Unix socket with a
temporary app directory, and talks raw HTTP/1.1 to it. Standard library only;
the Flask tests are skipped when flask is not importable.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import unittest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LOADER = os.path.join(REPO, "driver", "src", "wsgi_loader", "wsgi_loader.py")
EXAMPLES = os.path.join(REPO, "examples")
WAIT = 10.0  # upper bound for every wait, in seconds

try:
    import flask  # noqa: F401
    HAVE_FLASK = True
except ImportError:
    HAVE_FLASK = False


def wait_until(predicate, what, timeout=WAIT):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.0f s waiting for %s" % (timeout, what))
        time.sleep(0.01)


TEST_APP = r'''
import io
import json
import os
import sys
import time

import helper_module  # lives next to this file: proves the app root is on sys.path

MARKERS = os.environ["TEST_MARKER_DIR"]


def mark(name):
    with open(os.path.join(MARKERS, name), "w") as f:
        f.write(str(os.getpid()))


class Closing(object):
    """An iterable with close(); `fail_after` raises after that many items."""

    def __init__(self, items, marker, fail_after=None):
        self.items, self.marker, self.fail_after = items, marker, fail_after

    def __iter__(self):
        for i, item in enumerate(self.items):
            if self.fail_after is not None and i >= self.fail_after:
                raise RuntimeError("iteration failed on purpose")
            yield item

    def close(self):
        mark(self.marker)


class MarkedFile(io.FileIO):
    """A file that marks `marker` when it is closed."""

    def __init__(self, name, marker):
        io.FileIO.__init__(self, name, "rb")
        self.marker = marker

    def close(self):
        if not self.closed:
            mark(self.marker)
        io.FileIO.close(self)


class NoPythonReads(MarkedFile):
    """A file whose bytes cannot be read through Python."""

    def read(self, size=-1):
        raise AssertionError("the file was read through Python")

    readinto = readall = read


def text(start_response, body, status="200 OK", extra=()):
    start_response(status, [("Content-Type", "text/plain")] + list(extra))
    return [body.encode("latin-1") if isinstance(body, str) else body]


def application(environ, start_response):
    path = environ["PATH_INFO"]
    query = environ["QUERY_STRING"]
    inp = environ["wsgi.input"]

    if path == "/pid":
        return text(start_response, str(os.getpid()))
    if path.startswith("/env"):
        env = {k: v for k, v in environ.items() if isinstance(v, (str, bool, int, tuple))}
        env["errors_is_stderr"] = environ["wsgi.errors"] is sys.stderr
        env["cwd"] = os.getcwd()
        env["sys_path0"] = sys.path[0]
        env["helper"] = helper_module.VALUE
        env["body"] = inp.read().decode("latin-1")
        return text(start_response, json.dumps(env), extra=[("X-Kind", "env")])
    if path == "/body":
        if query == "read":
            chunks = [inp.read()]
        elif query == "read3":
            chunks = []
            while True:
                c = inp.read(3)
                if not c:
                    break
                chunks.append(c)
        elif query == "readline":
            chunks = []
            while True:
                line = inp.readline()
                if not line:
                    break
                chunks.append(line)
        elif query == "readline2":
            chunks = [inp.readline(2), inp.readline(), inp.read()]
        elif query == "readlines":
            chunks = inp.readlines()
        elif query == "iter":
            chunks = list(inp)
        elif query == "size":
            n = 0
            while True:
                c = inp.read(65536)
                if not c:
                    break
                n += len(c)
            return text(start_response, "%d %s" % (n, environ.get("CONTENT_LENGTH")))
        elif query == "ignore":
            return text(start_response, "ignored")
        else:
            chunks = []
        out = {"cl": environ.get("CONTENT_LENGTH"), "chunks": [c.decode("latin-1") for c in chunks]}
        return text(start_response, json.dumps(out))
    if path == "/gen":
        start_response("200 OK", [("Content-Type", "text/plain")])

        def gen():
            yield b"one"
            yield b""
            yield b"two"
        return gen()
    if path == "/gen-empty":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return iter([b"", b""])
    if path == "/lazy-start":
        def gen():
            start_response("201 Created", [("Content-Type", "text/plain")])
            yield b"lazy"
        return gen()
    if path == "/list":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"hello", b" ", b"world"]
    if path == "/cl-gen":
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "6")])
        return iter([b"abc", b"def"])
    if path == "/write":
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"via write, ")
        return [b"then iterable"]
    if path == "/close":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return Closing([b"closing ", b"body"], "closed-" + query)
    if path == "/close-fail":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return Closing([b"first", b"second"], "closed-" + query, fail_after=1)
    if path == "/exc-info":
        start_response("200 OK", [("Content-Type", "text/plain")])
        try:
            raise ValueError("replace the headers")
        except ValueError:
            start_response("503 Service Unavailable", [("Content-Type", "text/plain")], sys.exc_info())
        return [b"recovered"]
    if path == "/exc-info-late":
        start_response("200 OK", [("Content-Type", "text/plain")])

        def gen():
            yield b"first"
            try:
                raise ValueError("late failure")
            except ValueError:
                start_response("500 Internal Server Error", [], sys.exc_info())
            yield b"never"
        return gen()
    if path == "/error":
        raise RuntimeError("kaboom from the app")
    if path == "/twice":
        start_response("200 OK", [])
        start_response("200 OK", [])
        return [b"unreachable"]
    if path == "/no-start":
        return [b"forgot start_response"]
    if path == "/status":
        start_response(query + " Whatever", [("Content-Type", "text/plain")])
        return [b"body that must not be sent"]
    if path == "/held":
        # Answers once the test creates the marker "release" (at most 10 s).
        mark("held-started")
        deadline = time.monotonic() + 10
        while not os.path.exists(os.path.join(MARKERS, "release")) and time.monotonic() < deadline:
            time.sleep(0.005)
        return text(start_response, "released")
    if path == "/slow":
        mark("slow-started")
        time.sleep(int(query) / 1000.0)
        return text(start_response, "slow done")
    if path == "/app-close":
        return text(start_response, "bye", extra=[("Connection", "close")])
    if path.startswith("/file/"):
        # wsgi.file_wrapper. /file/sendfile: a real file whose Python reads fail, so the
        # bytes can only go out through the descriptor; /file/bytesio: no descriptor, so
        # the loader iterates in blocks of 7.
        kind = path[len("/file/"):]
        name = os.path.join(MARKERS, "..", "data.bin")
        wrap = environ["wsgi.file_wrapper"]
        if kind == "bytesio":
            start_response("200 OK", [("Content-Type", "application/octet-stream")])
            return wrap(io.BytesIO(open(name, "rb").read(1000)), 7)
        marker = "closed-file-" + kind
        f = NoPythonReads(name, marker) if kind == "sendfile" else MarkedFile(name, marker)
        extra = []
        if kind == "offset":
            f.read(10)
        if kind == "short-cl":
            extra = [("Content-Length", "5")]
        start_response("200 OK", [("Content-Type", "application/octet-stream")] + extra)
        return wrap(f)
    if path == "/print":
        print("hello on stdout")
        sys.stderr.write("hello on stderr\n")
        return text(start_response, "printed")
    return text(start_response, "not found", status="404 Not Found")
'''


class Response(object):
    def __init__(self, status, reason, headers, body, chunks):
        self.status, self.reason, self.headers, self.body, self.chunks = status, reason, headers, body, chunks

    def header(self, name):
        values = [v for n, v in self.headers if n.lower() == name.lower()]
        return values[0] if values else None

    def json(self):
        return json.loads(self.body.decode("utf-8"))


class Client(object):
    """A raw HTTP/1.1 client over a Unix socket."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(WAIT)
        self.sock.connect(path)
        self.buf = b""
        self.received = b""  # everything ever received

    def close(self):
        self.sock.close()

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self):
        data = self.sock.recv(65536)
        if not data:
            raise EOFError("connection closed by the loader")
        self.received += data
        self.buf += data

    def _line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n):
        while len(self.buf) < n:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def read_response(self, head_only=False):
        status_line = self._line().decode("latin-1")
        version, status, reason = (status_line.split(" ", 2) + [""])[:3]
        assert version == "HTTP/1.1", status_line
        headers = []
        while True:
            line = self._line()
            if not line:
                break
            name, _, value = line.decode("latin-1").partition(":")
            headers.append((name, value.strip()))
        resp = Response(int(status), reason, headers, b"", None)
        if head_only or resp.status in (204, 304) or resp.status < 200:
            return resp
        if (resp.header("Transfer-Encoding") or "").lower() == "chunked":
            resp.chunks = []
            while True:
                size = int(self._line().split(b";")[0], 16)
                if size == 0:
                    while self._line():
                        pass
                    break
                resp.chunks.append(self._exact(size))
                assert self._exact(2) == b"\r\n"
            resp.body = b"".join(resp.chunks)
        elif resp.header("Content-Length") is not None:
            resp.body = self._exact(int(resp.header("Content-Length")))
        else:
            while True:
                try:
                    self._fill()
                except EOFError:
                    break
            resp.body, self.buf = self.buf, b""
        return resp

    def request(self, method, target, headers=(), body=None, head_only=None):
        lines = ["%s %s HTTP/1.1" % (method, target), "Host: app.example:8080"]
        lines += ["%s: %s" % h for h in headers]
        if body is not None and not any(h[0].lower() in ("content-length", "transfer-encoding") for h in headers):
            lines.append("Content-Length: %d" % len(body))
        raw = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")
        self.send(raw)
        return self.read_response(head_only=(method == "HEAD") if head_only is None else head_only)

    def at_eof(self):
        """True if the loader closes the connection with nothing more to read."""
        if self.buf:
            return False
        try:
            return self.sock.recv(1) == b""
        except (ConnectionResetError, socket.timeout):
            return False


class Loader(object):
    """The loader running as a subprocess."""

    def __init__(self, app_root, startup_file=None, env=None, wait=True, loader=LOADER):
        self.tmp = tempfile.mkdtemp(prefix="ferry-wsgi-")
        self.socket_path = os.path.join(self.tmp, "app.sock")
        self.stdout_path = os.path.join(self.tmp, "stdout")
        self.stderr_path = os.path.join(self.tmp, "stderr")
        full_env = dict(os.environ)
        for k in list(full_env):
            if k.startswith("FERRY_"):
                del full_env[k]
        full_env.update({"FERRY_SOCKET": self.socket_path, "FERRY_APP_ROOT": app_root})
        if startup_file is not None:
            full_env["FERRY_STARTUP_FILE"] = startup_file
        full_env.update(env or {})
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, loader], env=full_env, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                cwd=self.tmp)
        if wait:
            self.wait_ready()

    def wait_ready(self):
        def ready():
            if self.proc.poll() is not None:
                raise AssertionError("loader exited with %s before listening; stderr:\n%s"
                                     % (self.proc.returncode, self.stderr()))
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.connect(self.socket_path)
                return True
            except OSError:
                return False
            finally:
                s.close()
        wait_until(ready, "the loader to listen on %s" % self.socket_path)

    def client(self):
        return Client(self.socket_path)

    def wait_exit(self):
        deadline = time.monotonic() + WAIT
        while self.proc.poll() is None:
            if time.monotonic() > deadline:
                raise AssertionError("loader did not exit within %s s" % WAIT)
            time.sleep(0.01)
        return self.proc.returncode

    def stderr(self):
        with open(self.stderr_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stdout(self):
        with open(self.stdout_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.tmp, ignore_errors=True)


class LoaderTestCase(unittest.TestCase):
    env = {}

    @classmethod
    def setUpClass(cls):
        cls.app_root = tempfile.mkdtemp(prefix="ferry-wsgi-app-")
        cls.markers = os.path.join(cls.app_root, "markers")
        os.mkdir(cls.markers)
        with open(os.path.join(cls.app_root, "passenger_wsgi.py"), "w") as f:
            f.write(TEST_APP)
        with open(os.path.join(cls.app_root, "helper_module.py"), "w") as f:
            f.write("VALUE = 'helper loaded'\n")
        with open(os.path.join(cls.app_root, "no_app.py"), "w") as f:
            f.write("something_else = 1\n")
        with open(os.path.join(cls.app_root, "not_callable.py"), "w") as f:
            f.write("application = 42\n")
        with open(os.path.join(cls.app_root, "broken.py"), "w") as f:
            f.write("import helper_module\nraise ImportError('the app cannot start: missing settings')\n")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.app_root, ignore_errors=True)

    def start(self, **kw):
        env = dict(self.env, TEST_MARKER_DIR=self.markers)
        env.update(kw.pop("env", {}))
        loader = Loader(self.app_root, env=env, **kw)
        self.addCleanup(loader.stop)
        return loader

    def connect(self, loader):
        c = loader.client()
        self.addCleanup(c.close)
        return c


class SharedLoaderTestCase(LoaderTestCase):
    """One loader for the whole class (started after `prepare_app`), and a new
    connection to it, `self.c`, for each test."""

    @classmethod
    def prepare_app(cls):
        pass

    @classmethod
    def setUpClass(cls):
        super(SharedLoaderTestCase, cls).setUpClass()
        cls.prepare_app()
        cls.loader = Loader(cls.app_root, env={"TEST_MARKER_DIR": cls.markers})

    @classmethod
    def tearDownClass(cls):
        cls.loader.stop()
        super(SharedLoaderTestCase, cls).tearDownClass()

    def setUp(self):
        self.assertIsNone(self.loader.proc.poll(), "loader died:\n" + self.loader.stderr())
        self.c = self.connect(self.loader)


class TestProtocol(SharedLoaderTestCase):

    def test_keep_alive_many_requests_one_connection(self):
        pids = set()
        for _ in range(20):
            r = self.c.request("GET", "/pid")
            self.assertEqual(r.status, 200)
            self.assertIsNone(r.header("Connection"))
            pids.add(r.body)
        self.assertEqual(pids, {str(self.loader.proc.pid).encode()})

    def test_pipelined_requests(self):
        self.c.send(b"GET /pid HTTP/1.1\r\nHost: x\r\n\r\n"
                    b"POST /body?read HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
                    b"GET /list HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertEqual(self.c.read_response().body, str(self.loader.proc.pid).encode())
        self.assertEqual(self.c.read_response().json()["chunks"], ["abc"])
        self.assertEqual(self.c.read_response().body, b"hello world")

    def test_request_split_across_sends(self):
        raw = b"POST /body?read HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n0123456789"
        for i in range(0, len(raw), 7):
            self.c.send(raw[i:i + 7])
            time.sleep(0.002)
        self.assertEqual(self.c.read_response().json()["chunks"], ["0123456789"])

    def test_probe_connection_is_quiet(self):
        self.assertEqual(self.c.request("GET", "/pid").status, 200)
        before = self.loader.stderr()
        for _ in range(3):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(self.loader.socket_path)
            s.close()
        self.assertEqual(self.c.request("GET", "/pid").status, 200)
        self.assertEqual(self.loader.stderr(), before)

    def test_idle_connection_does_not_block_another(self):
        self.assertEqual(self.c.request("GET", "/pid").status, 200)
        other = self.connect(self.loader)  # self.c stays open and idle
        self.assertEqual(other.request("GET", "/pid").status, 200)
        self.assertEqual(self.c.request("GET", "/pid").status, 200)

    def test_content_length_body(self):
        r = self.c.request("POST", "/body?read", [("Content-Type", "text/plain")], body=b"hello body")
        self.assertEqual(r.json(), {"cl": "10", "chunks": ["hello body"]})
        r = self.c.request("POST", "/body?read3", body=b"abcdefgh")
        self.assertEqual(r.json()["chunks"], ["abc", "def", "gh"])

    def test_chunked_request_body(self):
        raw = (b"POST /body?read HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"5;ext=1\r\nhello\r\n1\r\n \r\nA\r\n0123456789\r\n0\r\nX-Trailer: t\r\n\r\n")
        self.c.send(raw)
        r = self.c.read_response()
        self.assertEqual(r.json(), {"cl": "16", "chunks": ["hello 0123456789"]})
        self.assertEqual(self.c.request("GET", "/pid").status, 200)  # connection still in sync

    def test_readline_readlines_iter(self):
        body = b"first\nsecond\n\nlast-no-newline"
        lines = ["first\n", "second\n", "\n", "last-no-newline"]
        for mode in ("readline", "readlines", "iter"):
            r = self.c.request("POST", "/body?" + mode, body=body)
            self.assertEqual(r.json()["chunks"], lines, mode)
        r = self.c.request("POST", "/body?readline2", body=b"abcdef\nrest\nmore")
        self.assertEqual(r.json()["chunks"], ["ab", "cdef\n", "rest\nmore"])

    def test_large_streamed_body(self):
        size = 3 * 1024 * 1024 + 17  # bigger than the in-memory limit: read lazily from the socket
        body = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
        for mode in ("size", "readline"):
            r = self.c.request("POST", "/body?" + mode, body=body)
            if mode == "size":
                self.assertEqual(r.body, ("%d %d" % (size, size)).encode())
            else:
                self.assertEqual("".join(r.json()["chunks"]).encode("latin-1"), body)
        # An app that ignores its body: the loader discards it, the connection stays usable.
        r = self.c.request("POST", "/body?ignore", body=body)
        self.assertEqual(r.body, b"ignored")
        self.assertEqual(self.c.request("GET", "/pid").status, 200)

    def test_generator_response_is_chunked(self):
        r = self.c.request("GET", "/gen")
        self.assertEqual(r.header("Transfer-Encoding"), "chunked")
        self.assertIsNone(r.header("Content-Length"))
        self.assertEqual(r.chunks, [b"one", b"two"])
        r = self.c.request("GET", "/lazy-start")
        self.assertEqual((r.status, r.body), (201, b"lazy"))

    def test_empty_generator_gets_content_length_zero(self):
        r = self.c.request("GET", "/gen-empty")
        self.assertEqual((r.header("Content-Length"), r.body), ("0", b""))

    def test_list_response_gets_content_length(self):
        r = self.c.request("GET", "/list")
        self.assertEqual(r.header("Content-Length"), "11")
        self.assertIsNone(r.header("Transfer-Encoding"))
        self.assertEqual(r.body, b"hello world")

    def test_app_content_length_is_used(self):
        r = self.c.request("GET", "/cl-gen")
        self.assertEqual((r.header("Content-Length"), r.header("Transfer-Encoding"), r.body), ("6", None, b"abcdef"))

    def test_write_callable(self):
        r = self.c.request("GET", "/write")
        self.assertEqual(r.body, b"via write, then iterable")

    def test_close_is_called(self):
        marker = os.path.join(self.markers, "closed-ok")
        r = self.c.request("GET", "/close?ok")
        self.assertEqual(r.body, b"closing body")
        wait_until(lambda: os.path.exists(marker), "close() to be called")

    def test_close_is_called_when_iteration_fails(self):
        marker = os.path.join(self.markers, "closed-fail")
        self.c.send(b"GET /close-fail?fail HTTP/1.1\r\nHost: x\r\n\r\n")
        # The head and the first chunk went out; then the connection is closed.
        with self.assertRaises(EOFError):
            self.c.read_response()
        self.assertIn(b"\r\n5\r\nfirst\r\n", self.c.received)
        wait_until(lambda: os.path.exists(marker), "close() to be called")
        wait_until(lambda: "iteration failed on purpose" in self.loader.stderr(), "the traceback")

    def test_start_response_with_exc_info_before_headers(self):
        r = self.c.request("GET", "/exc-info")
        self.assertEqual((r.status, r.body), (503, b"recovered"))

    def test_start_response_with_exc_info_after_headers(self):
        self.c.send(b"GET /exc-info-late HTTP/1.1\r\nHost: x\r\n\r\n")
        with self.assertRaises(EOFError):  # truncated: no terminating chunk
            self.c.read_response()
        self.assertIn(b"\r\n5\r\nfirst\r\n", self.c.received)
        self.assertNotIn(b"never", self.c.received)
        wait_until(lambda: "late failure" in self.loader.stderr(), "the traceback")
        other = self.connect(self.loader)
        self.assertEqual(other.request("GET", "/pid").status, 200)

    def test_app_exception_gives_500_and_keeps_serving(self):
        for path in ("/error", "/twice", "/no-start"):
            r = self.c.request("GET", path)
            self.assertEqual(r.status, 500, path)
            self.assertEqual(r.body, b"Internal Server Error\n")  # no traceback outside development
            self.assertEqual(self.c.request("GET", "/list").body, b"hello world")
        err = wait_until(lambda: "kaboom from the app" in self.loader.stderr() and self.loader.stderr(),
                         "the traceback on stderr")
        self.assertIn("Traceback", err)
        self.assertIn("start_response() called a second time", err)

    def test_head_has_no_body(self):
        r = self.c.request("HEAD", "/list")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("Content-Length"), "11")
        r = self.c.request("HEAD", "/gen")
        self.assertEqual(r.status, 200)
        # Had the loader sent a body, this response would be garbage.
        self.assertEqual(self.c.request("GET", "/list").body, b"hello world")

    def test_204_and_304_have_no_body(self):
        for code in (204, 304):
            r = self.c.request("GET", "/status?%d" % code)
            self.assertEqual(r.status, code)
            self.assertIsNone(r.header("Content-Length"))
            self.assertIsNone(r.header("Transfer-Encoding"))
        self.assertEqual(self.c.request("GET", "/list").body, b"hello world")

    def test_path_info_decoding_and_query(self):
        env = self.c.request("GET", "/env/caf%C3%A9/a%2Fb%20c?x=%41&y=caf%C3%A9").json()
        # PEP 3333: the decoded bytes, as a latin-1 str.
        self.assertEqual(env["PATH_INFO"], "/env/caf\xc3\xa9/a/b c")
        self.assertEqual(env["QUERY_STRING"], "x=%41&y=caf%C3%A9")
        self.assertEqual(env["REQUEST_URI"], "/env/caf%C3%A9/a%2Fb%20c?x=%41&y=caf%C3%A9")
        self.assertEqual(env["SCRIPT_NAME"], "")

    def test_environ(self):
        r = self.c.request("POST", "/env", [
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("X-Forwarded-For", "203.0.113.9"),
            ("X-Forwarded-Proto", "https"),
            ("X-Forwarded-Host", "public.example"),
            ("X-Multi", "a"), ("X-Multi", "b"),
            ("Cookie", "a=1"), ("Cookie", "b=2"),
            ("X_Forwarded_For", "6.6.6.6"),
            ("Expect", "100-continue"),
            ("X-Latin", "caf\xe9"),
        ], body=b"k=v")
        env = r.json()
        self.assertEqual(env["REQUEST_METHOD"], "POST")
        self.assertEqual(env["SERVER_PROTOCOL"], "HTTP/1.1")
        self.assertEqual(env["CONTENT_TYPE"], "application/x-www-form-urlencoded")
        self.assertEqual(env["CONTENT_LENGTH"], "3")
        self.assertNotIn("HTTP_CONTENT_TYPE", env)
        self.assertNotIn("HTTP_CONTENT_LENGTH", env)
        self.assertEqual(env["body"], "k=v")
        self.assertEqual(env["REMOTE_ADDR"], "203.0.113.9")
        self.assertEqual(env["wsgi.url_scheme"], "https")
        self.assertEqual((env["SERVER_NAME"], env["SERVER_PORT"]), ("app.example", "8080"))
        self.assertEqual(env["HTTP_HOST"], "app.example:8080")
        self.assertEqual(env["HTTP_X_FORWARDED_HOST"], "public.example")
        self.assertEqual(env["HTTP_X_MULTI"], "a,b")
        self.assertEqual(env["HTTP_COOKIE"], "a=1; b=2")
        self.assertEqual(env["HTTP_X_FORWARDED_FOR"], "203.0.113.9")  # not spoofed by X_Forwarded_For
        self.assertEqual(env["HTTP_X_LATIN"], "caf\xe9")
        self.assertEqual(env["wsgi.version"], [1, 0])
        self.assertIs(env["wsgi.multithread"], False)
        self.assertIs(env["wsgi.multiprocess"], True)
        self.assertIs(env["wsgi.run_once"], False)
        self.assertIs(env["wsgi.input_terminated"], True)
        self.assertIs(env["errors_is_stderr"], True)
        self.assertEqual(env["cwd"], os.path.realpath(self.app_root))
        self.assertEqual(env["sys_path0"], os.path.abspath(self.app_root))
        self.assertEqual(env["helper"], "helper loaded")

    def test_environ_defaults(self):
        self.c.send(b"GET /env HTTP/1.1\r\n\r\n")
        env = self.c.read_response().json()
        self.assertEqual(env["REMOTE_ADDR"], "127.0.0.1")
        self.assertEqual(env["wsgi.url_scheme"], "http")
        self.assertEqual((env["SERVER_NAME"], env["SERVER_PORT"]), ("localhost", "80"))
        self.assertNotIn("CONTENT_LENGTH", env)
        self.assertNotIn("CONTENT_TYPE", env)
        self.assertEqual(env["QUERY_STRING"], "")

    def test_remote_addr_is_rightmost_forwarded_for(self):
        env = self.c.request("GET", "/env", [("X-Forwarded-For", "10.9.9.9, 198.51.100.7"),
                                             ("X-Forwarded-Proto", "https"),
                                             ("Host", "h.example")]).json()
        self.assertEqual(env["REMOTE_ADDR"], "198.51.100.7")
        self.assertEqual(env["SERVER_PORT"], "443")

    def test_connection_close(self):
        r = self.c.request("GET", "/pid", [("Connection", "close")])
        self.assertEqual(r.header("Connection"), "close")
        self.assertTrue(self.c.at_eof())

    def test_app_connection_close_header(self):
        r = self.connect(self.loader)
        resp = r.request("GET", "/app-close")
        self.assertEqual(resp.body, b"bye")
        self.assertEqual([v for n, v in resp.headers if n.lower() == "connection"], ["close"])
        self.assertTrue(r.at_eof())

    def test_http10(self):
        self.c.send(b"GET /gen HTTP/1.0\r\n\r\n")
        r = self.c.read_response()
        self.assertEqual(r.body, b"onetwo")  # close-delimited, no chunked for HTTP/1.0
        self.assertTrue(self.c.at_eof())

    def test_bad_request(self):
        self.c.send(b"GARBAGE\r\n\r\n")
        r = self.c.read_response()
        self.assertEqual(r.status, 400)
        self.assertTrue(self.c.at_eof())
        c = self.connect(self.loader)
        c.send(b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab")
        self.assertEqual(c.read_response().status, 400)
        c = self.connect(self.loader)
        self.assertEqual(c.request("GET", "/pid").status, 200)

    def test_output_is_forwarded_line_by_line(self):
        self.c.request("GET", "/print")
        wait_until(lambda: "hello on stdout" in self.loader.stdout(), "stdout to be flushed")
        wait_until(lambda: "hello on stderr" in self.loader.stderr(), "stderr to be flushed")


class TestFileWrapper(SharedLoaderTestCase):
    """wsgi.file_wrapper: a regular file goes out with os.sendfile, anything else is
    iterated."""

    DATA = bytes(range(256)) * (3 * 4096)  # 3 MiB: several sendfile calls

    @classmethod
    def prepare_app(cls):
        with open(os.path.join(cls.app_root, "data.bin"), "wb") as f:
            f.write(cls.DATA)

    def closed(self, kind):
        return os.path.exists(os.path.join(self.markers, "closed-file-" + kind))

    def test_a_real_file_is_sent_without_python_reads(self):
        r = self.c.request("GET", "/file/sendfile")
        self.assertEqual(r.status, 200, r.body[:300])
        self.assertEqual(r.header("Content-Length"), str(len(self.DATA)))
        self.assertEqual(r.body, self.DATA)
        wait_until(lambda: self.closed("sendfile"), "the file to be closed")
        # The connection stays usable.
        self.assertEqual(self.c.request("GET", "/list").body, b"hello world")

    def test_the_rest_of_a_file_already_read_from(self):
        r = self.c.request("GET", "/file/offset")
        self.assertEqual(r.body, self.DATA[10:])
        self.assertEqual(r.header("Content-Length"), str(len(self.DATA) - 10))

    def test_the_apps_content_length_limits_the_bytes(self):
        r = self.c.request("GET", "/file/short-cl")
        self.assertEqual(r.header("Content-Length"), "5")
        self.assertEqual(r.body, self.DATA[:5])
        self.assertEqual(self.c.request("GET", "/list").body, b"hello world")

    def test_head_has_the_length_and_no_body(self):
        r = self.c.request("HEAD", "/file/sendfile")
        self.assertEqual(r.header("Content-Length"), str(len(self.DATA)))
        self.assertEqual(self.c.request("GET", "/list").body, b"hello world")

    def test_a_file_like_without_a_descriptor_is_iterated(self):
        r = self.c.request("GET", "/file/bytesio")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("Transfer-Encoding"), "chunked")
        self.assertEqual(r.body, self.DATA[:1000])
        self.assertEqual(set(len(c) for c in r.chunks[:-1]), {7})


class TestDevelopment(LoaderTestCase):
    env = {"FERRY_ENVIRONMENT": "development"}

    def test_traceback_in_500_body(self):
        loader = self.start()
        r = self.connect(loader).request("GET", "/error")
        self.assertEqual(r.status, 500)
        self.assertIn(b"RuntimeError: kaboom from the app", r.body)
        self.assertIn(b"Traceback", r.body)


class TestLifecycle(LoaderTestCase):
    def test_sigterm_when_idle_exits_0(self):
        loader = self.start()
        c = self.connect(loader)
        self.assertEqual(c.request("GET", "/pid").status, 200)  # an idle keep-alive connection stays open
        loader.proc.send_signal(signal.SIGTERM)
        self.assertEqual(loader.wait_exit(), 0)
        self.assertFalse(os.path.exists(loader.socket_path), "socket file removed on exit")

    def test_sigint_exits_0(self):
        loader = self.start()
        loader.proc.send_signal(signal.SIGINT)
        self.assertEqual(loader.wait_exit(), 0)

    def test_sigterm_during_request_finishes_it(self):
        marker = os.path.join(self.markers, "slow-started")
        if os.path.exists(marker):
            os.unlink(marker)
        loader = self.start()
        c = self.connect(loader)
        c.send(b"GET /slow?300 HTTP/1.1\r\nHost: x\r\n\r\n")
        wait_until(lambda: os.path.exists(marker), "the slow request to start")
        loader.proc.send_signal(signal.SIGTERM)
        r = c.read_response()
        self.assertEqual((r.status, r.body), (200, b"slow done"))
        self.assertEqual(r.header("Connection"), "close")
        self.assertEqual(loader.wait_exit(), 0)

    def test_default_startup_file_and_stale_socket(self):
        loader = Loader(self.app_root, env={"TEST_MARKER_DIR": self.markers}, wait=False)
        self.addCleanup(loader.stop)
        loader.wait_ready()
        self.assertEqual(self.connect(loader).request("GET", "/pid").status, 200)
        # A second loader on the same path replaces the stale socket file.
        loader.proc.kill()
        loader.proc.wait()
        self.assertTrue(os.path.exists(loader.socket_path))
        env = dict(os.environ, FERRY_SOCKET=loader.socket_path, FERRY_APP_ROOT=self.app_root,
                   TEST_MARKER_DIR=self.markers)
        with open(loader.stderr_path, "wb") as err:
            loader.proc = subprocess.Popen([sys.executable, LOADER], env=env, stdout=subprocess.DEVNULL,
                                           stderr=err, stdin=subprocess.DEVNULL)
        loader.wait_ready()
        self.assertEqual(self.connect(loader).request("GET", "/pid").body, str(loader.proc.pid).encode())

    def assert_startup_fails(self, startup_file, *needles):
        loader = self.start(startup_file=startup_file, wait=False)
        self.assertEqual(loader.wait_exit(), 1)
        err = loader.stderr()
        for needle in needles:
            self.assertIn(needle, err)
        self.assertFalse(os.path.exists(loader.socket_path))

    def test_missing_application_exits_1(self):
        self.assert_startup_fails("no_app.py", "does not define 'application'", "no_app.py")

    def test_application_not_callable_exits_1(self):
        self.assert_startup_fails("not_callable.py", "'application'", "not callable")

    def test_import_error_exits_1_with_traceback(self):
        self.assert_startup_fails("broken.py", "Traceback", "the app cannot start: missing settings",
                                  "loading startup file")

    def test_missing_startup_file_exits_1(self):
        self.assert_startup_fails("nope.py", "does not exist")

    def test_app_modules_named_like_the_loaders_own_are_the_apps(self):
        # The loader's modules live in its package, so an app's `server` or `request`
        # module is not shadowed by them.
        app_root = tempfile.mkdtemp(prefix="ferry-wsgi-app-")
        self.addCleanup(shutil.rmtree, app_root, True)
        names = ("server", "request", "response", "body", "shutdown", "file_wrapper")
        for name in names:
            with open(os.path.join(app_root, name + ".py"), "w") as f:
                f.write("WHOSE = 'the app'\n")
        with open(os.path.join(app_root, "passenger_wsgi.py"), "w") as f:
            f.write(textwrap.dedent("""\
                import %s
                def application(environ, start_response):
                    whose = ",".join(m.WHOSE for m in (%s)).encode()
                    start_response("200 OK", [("Content-Length", str(len(whose)))])
                    return [whose]
                """ % (", ".join(names), ", ".join(names))))
        loader = Loader(app_root)
        self.addCleanup(loader.stop)
        self.assertEqual(self.connect(loader).request("GET", "/").body, ",".join(["the app"] * len(names)).encode(),
                         loader.stderr())

    def test_a_loader_module_that_does_not_compile_is_reported_as_ferrys_bug(self):
        copy = tempfile.mkdtemp(prefix="ferry-wsgi-loader-")
        self.addCleanup(shutil.rmtree, copy, True)
        shutil.copytree(os.path.dirname(LOADER), os.path.join(copy, "loader"),
                        ignore=shutil.ignore_patterns("__pycache__", "*.rs"))
        with open(os.path.join(copy, "loader", "ferry_wsgi", "response.py"), "a") as f:
            f.write("\ndef broken(:\n")
        loader = self.start(wait=False, loader=os.path.join(copy, "loader", "wsgi_loader.py"))
        self.assertEqual(loader.wait_exit(), 1)
        last_line = loader.stderr().strip().splitlines()[-1]
        for needle in ("ferry_wsgi", "SyntaxError", "response.py", "a bug in ferry"):
            self.assertIn(needle, last_line)
        self.assertFalse(os.path.exists(loader.socket_path))

    def test_missing_socket_env_exits_2(self):
        env = {k: v for k, v in os.environ.items() if not k.startswith("FERRY_")}
        proc = subprocess.run([sys.executable, LOADER], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, timeout=WAIT)
        self.assertEqual(proc.returncode, 2)
        self.assertIn(b"FERRY_SOCKET", proc.stderr)


class TestThreadModel(LoaderTestCase):
    """FERRY_CONCURRENCY_MODEL=thread: a thread per connection from ferry."""

    env = {"FERRY_CONCURRENCY_MODEL": "thread"}

    def setUp(self):
        for name in ("held-started", "release"):
            path = os.path.join(self.markers, name)
            if os.path.exists(path):
                os.unlink(path)

    def hold(self, loader):
        """A connection whose request is in the app until the marker "release"."""
        held = self.connect(loader)
        held.send(b"GET /held HTTP/1.1\r\nHost: x\r\n\r\n")
        wait_until(lambda: os.path.exists(os.path.join(self.markers, "held-started")),
                   "the held request to reach the app")
        return held

    def release(self):
        open(os.path.join(self.markers, "release"), "w").close()

    def test_a_request_is_served_while_another_connections_request_is_in_the_app(self):
        loader = self.start()
        held = self.hold(loader)
        other = self.connect(loader)
        for _ in range(3):
            r = other.request("GET", "/pid")
            self.assertEqual((r.status, r.body), (200, str(loader.proc.pid).encode()))
        env = other.request("GET", "/env").json()
        self.assertIs(env["wsgi.multithread"], True)
        self.release()
        r = held.read_response()
        self.assertEqual((r.status, r.body), (200, b"released"))
        self.assertIsNone(r.header("Connection"), "kept alive")
        self.assertEqual(held.request("GET", "/pid").status, 200)

    def test_sigterm_finishes_the_request_in_the_app_and_closes_idle_connections(self):
        loader = self.start()
        idle = self.connect(loader)
        self.assertEqual(idle.request("GET", "/pid").status, 200)
        held = self.hold(loader)
        loader.proc.send_signal(signal.SIGTERM)
        wait_until(idle.at_eof, "the idle connection to be closed")
        self.assertIsNone(loader.proc.poll(), "the loader waits for the request in the app")
        self.release()
        r = held.read_response()
        self.assertEqual((r.status, r.body), (200, b"released"))
        self.assertEqual(r.header("Connection"), "close")
        self.assertEqual(loader.wait_exit(), 0)
        self.assertFalse(os.path.exists(loader.socket_path), "socket file removed on exit")

    def test_sigterm_when_idle_exits_0(self):
        loader = self.start()
        c = self.connect(loader)
        self.assertEqual(c.request("GET", "/pid").status, 200)
        loader.proc.send_signal(signal.SIGTERM)
        self.assertEqual(loader.wait_exit(), 0)

    def test_an_unknown_model_is_refused(self):
        loader = self.start(env={"FERRY_CONCURRENCY_MODEL": "fibers"}, wait=False)
        self.assertEqual(loader.wait_exit(), 2)
        self.assertIn("FERRY_CONCURRENCY_MODEL is 'fibers'", loader.stderr())


class TestExamples(unittest.TestCase):
    def start(self, name):
        loader = Loader(os.path.join(EXAMPLES, name))
        self.addCleanup(loader.stop)
        c = loader.client()
        self.addCleanup(c.close)
        return loader, c

    def test_hello_wsgi(self):
        loader, c = self.start("hello-wsgi")
        r = c.request("GET", "/")
        self.assertEqual(r.body, ("Hello from ferry! (pid %d)\n" % loader.proc.pid).encode())
        r = c.request("GET", "/slow?ms=20")
        self.assertEqual(r.status, 200)
        self.assertIn(b"Slept 20 ms", r.body)
        self.assertEqual(c.request("GET", "/nope").status, 404)

    @unittest.skipUnless(HAVE_FLASK, "flask is not installed")
    def test_flask_app(self):
        loader, c = self.start("flask-app")
        r = c.request("GET", "/")
        self.assertEqual(r.status, 200)
        self.assertIn(b"Hello from Flask on ferry!", r.body)
        payload = {"name": "ferry", "items": [1, 2, 3], "nested": {"ok": True}}
        r = c.request("POST", "/echo", [("Content-Type", "application/json")],
                      body=json.dumps(payload).encode())
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json(), payload)
        r = c.request("POST", "/echo", [("Content-Type", "text/plain")], body=b"not json")
        self.assertEqual(r.status, 400)
        r = c.request("GET", "/stream?n=3")
        self.assertEqual(r.header("Transfer-Encoding"), "chunked")
        self.assertEqual(len(r.chunks), 3)
        self.assertTrue(r.body.startswith(b"line 1 of 3"))


if __name__ == "__main__":
    unittest.main()
