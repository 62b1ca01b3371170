"""Tests for the loader's frame path: the requests ferry sends as a frame of
environ variables (http/src/wsgi_frame.rs writes them, ferry_wsgi/frame.py reads
them) instead of an HTTP head. The loader here is the same subprocess as in
test_loader.py; these tests send it frames built as ferry builds them.

That ferry's frames give the app the environ an HTTP head gave it is checked
against this loader by driver/src/wsgi_loader/frame_check_tests.rs.
"""

import os
import socket
import time
import unittest

from test_loader import SharedLoaderTestCase, wait_until

HEAD, HTTP11, KEEP_ALIVE = 1, 2, 4


def frame(variables, flags=HTTP11 | KEEP_ALIVE, body=b""):
    """A frame of `variables` ((key, value) pairs, in order), then `body`."""
    payload = bytes([flags]) + "\0".join(k + "\0" + v for k, v in variables).encode("latin-1")
    return b"\0" + len(payload).to_bytes(4, "big") + payload + body


def request_frame(method, target, fields=(), body=None, flags=HTTP11 | KEEP_ALIVE):
    """The frame ferry sends for `method target` from 127.0.0.1 with `fields` (environ
    keys already, repeats joined, as ferry does) and `body`."""
    path, _, query = target.partition("?")
    variables = [("HTTP_HOST", "app.example:8080")] + list(fields)
    if body is not None:
        variables.append(("CONTENT_LENGTH", str(len(body))))
    variables += [
        ("REQUEST_METHOD", method), ("SERVER_PROTOCOL", "HTTP/1.1"), ("REQUEST_URI", target),
        ("PATH_INFO", path), ("QUERY_STRING", query), ("wsgi.url_scheme", "http"),
        ("SERVER_NAME", "app.example"), ("SERVER_PORT", "8080"), ("REMOTE_ADDR", "127.0.0.1"),
    ]
    if method == "HEAD":
        flags |= HEAD
    return frame(variables, flags, body or b"")


class TestFrames(SharedLoaderTestCase):
    def ask(self, method, target, fields=(), body=None, flags=HTTP11 | KEEP_ALIVE, client=None):
        client = client or self.c
        client.send(request_frame(method, target, fields, body, flags))
        return client.read_response(head_only=method == "HEAD")

    def test_the_frames_variables_are_the_environ(self):
        env = self.ask("POST", "/env", [
            ("CONTENT_TYPE", "application/x-www-form-urlencoded"),
            ("HTTP_X_MULTI", "a,b"),
            ("HTTP_COOKIE", "a=1; b=2"),
            ("HTTP_X_LATIN", "caf\xe9"),
            ("HTTP_X_FORWARDED_FOR", "203.0.113.9"),
        ], body=b"k=v").json()
        for key, value in [
            ("REQUEST_METHOD", "POST"), ("SERVER_PROTOCOL", "HTTP/1.1"), ("PATH_INFO", "/env"),
            ("CONTENT_TYPE", "application/x-www-form-urlencoded"), ("CONTENT_LENGTH", "3"),
            ("body", "k=v"), ("HTTP_X_MULTI", "a,b"), ("HTTP_COOKIE", "a=1; b=2"),
            ("HTTP_X_LATIN", "caf\xe9"), ("HTTP_HOST", "app.example:8080"),
            ("SERVER_NAME", "app.example"), ("SERVER_PORT", "8080"),
            ("REMOTE_ADDR", "127.0.0.1"), ("wsgi.url_scheme", "http"),
            ("SCRIPT_NAME", ""), ("SERVER_SOFTWARE", "ferry"),
        ]:
            self.assertEqual(env[key], value, key)
        # What the loader adds itself, as for HTTP.
        self.assertEqual(env["wsgi.version"], [1, 0])
        self.assertIs(env["wsgi.multiprocess"], True)
        self.assertIs(env["wsgi.input_terminated"], True)
        self.assertIs(env["errors_is_stderr"], True)
        self.assertEqual(env["helper"], "helper loaded")

    def test_no_body_means_no_content_length_and_an_empty_input(self):
        env = self.ask("GET", "/env").json()
        self.assertNotIn("CONTENT_LENGTH", env)
        self.assertNotIn("CONTENT_TYPE", env)
        self.assertEqual(env["body"], "")

    def test_the_raw_path_is_percent_decoded_and_the_query_is_not(self):
        env = self.ask("GET", "/env/caf%C3%A9/a%2Fb%20c%zz?x=%41&y=caf%C3%A9").json()
        self.assertEqual(env["PATH_INFO"], "/env/caf\xc3\xa9/a/b c%zz")
        self.assertEqual(env["QUERY_STRING"], "x=%41&y=caf%C3%A9")
        self.assertEqual(env["REQUEST_URI"], "/env/caf%C3%A9/a%2Fb%20c%zz?x=%41&y=caf%C3%A9")
        env = self.ask("GET", "/env/a%00b").json()
        self.assertEqual(env["PATH_INFO"], "/env/a\x00b")

    def test_bodies(self):
        r = self.ask("POST", "/body?read3", body=b"abcdefgh")
        self.assertEqual(r.json(), {"cl": "8", "chunks": ["abc", "def", "gh"]})
        r = self.ask("POST", "/body?readline2", body=b"abcdef\nrest\nmore")
        self.assertEqual(r.json()["chunks"], ["ab", "cdef\n", "rest\nmore"])
        r = self.ask("POST", "/body?read", body=b"")
        self.assertEqual(r.json(), {"cl": "0", "chunks": [""]})

    def test_a_large_body_is_streamed_and_an_ignored_one_drained(self):
        size = 3 * 1024 * 1024 + 17  # past the in-memory limit: read lazily from the socket
        body = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
        r = self.ask("POST", "/body?size", body=body)
        self.assertEqual(r.body, ("%d %d" % (size, size)).encode())
        r = self.ask("POST", "/body?readline", body=body)
        self.assertEqual("".join(r.json()["chunks"]).encode("latin-1"), body)
        r = self.ask("POST", "/body?ignore", body=body)
        self.assertEqual(r.body, b"ignored")
        self.assertEqual(self.ask("GET", "/list").body, b"hello world")

    def test_keep_alive_and_its_absence(self):
        pid = str(self.loader.proc.pid).encode()
        for _ in range(20):
            r = self.ask("GET", "/pid")
            self.assertEqual((r.body, r.header("Connection")), (pid, None))
        r = self.ask("GET", "/pid", flags=HTTP11)
        self.assertEqual((r.body, r.header("Connection")), (pid, "close"))
        self.assertTrue(self.c.at_eof())

    def test_head_has_the_length_and_no_body(self):
        r = self.ask("HEAD", "/list")
        self.assertEqual((r.status, r.header("Content-Length")), (200, "11"))
        r = self.ask("HEAD", "/gen")
        self.assertEqual(r.status, 200)
        # Had the loader sent a body, this response would be garbage.
        self.assertEqual(self.ask("GET", "/list").body, b"hello world")

    def test_without_the_http11_flag_a_stream_is_close_delimited(self):
        r = self.ask("GET", "/gen", flags=KEEP_ALIVE)
        self.assertEqual(r.body, b"onetwo")
        self.assertTrue(self.c.at_eof())

    def test_the_response_side_is_the_same_as_for_http(self):
        r = self.ask("GET", "/gen")
        self.assertEqual((r.header("Transfer-Encoding"), r.chunks), ("chunked", [b"one", b"two"]))
        self.assertEqual(self.ask("GET", "/write").body, b"via write, then iterable")
        self.assertEqual(self.ask("GET", "/close?frame").body, b"closing body")
        wait_until(lambda: os.path.exists(os.path.join(self.markers, "closed-frame")), "close()")
        r = self.ask("GET", "/exc-info")
        self.assertEqual((r.status, r.body), (503, b"recovered"))
        r = self.ask("GET", "/error")
        self.assertEqual(r.status, 500)
        self.assertEqual(self.ask("GET", "/list").body, b"hello world")

    def test_frames_and_http_on_one_connection_pipelined_and_split(self):
        pid = str(self.loader.proc.pid).encode()
        self.c.send(request_frame("GET", "/pid")
                    + b"GET /list HTTP/1.1\r\nHost: x\r\n\r\n"
                    + request_frame("POST", "/body?read", body=b"abc")
                    + request_frame("GET", "/list"))
        self.assertEqual(self.c.read_response().body, pid)
        self.assertEqual(self.c.read_response().body, b"hello world")
        self.assertEqual(self.c.read_response().json()["chunks"], ["abc"])
        self.assertEqual(self.c.read_response().body, b"hello world")
        raw = request_frame("POST", "/body?read", body=b"0123456789") + request_frame("GET", "/pid")
        for i in range(0, len(raw), 3):
            self.c.send(raw[i:i + 3])
            time.sleep(0.001)
        self.assertEqual(self.c.read_response().json()["chunks"], ["0123456789"])
        self.assertEqual(self.c.read_response().body, pid)

    def assert_refused(self, raw, status, why):
        c = self.connect(self.loader)
        c.send(raw)
        r = c.read_response()
        self.assertEqual(r.status, status, why)
        self.assertTrue(c.at_eof(), why)
        wait_until(lambda: why in self.loader.stderr(), "%r in the log" % why)
        # The loader serves the next connection.
        self.assertEqual(self.ask("GET", "/list").body, b"hello world")

    def test_a_malformed_frame_is_refused_and_named_in_the_log(self):
        good = [("REQUEST_METHOD", "GET"), ("PATH_INFO", "/list")]
        payload = bytes([HTTP11 | KEEP_ALIVE]) + b"REQUEST_METHOD\0GET\0PATH_INFO"
        odd = b"\0" + len(payload).to_bytes(4, "big") + payload
        self.assert_refused(odd, 400, "malformed request frame: an odd number (3)")
        self.assert_refused(frame(good[1:]), 400, "malformed request frame: no REQUEST_METHOD")
        self.assert_refused(frame(good[:1]), 400, "malformed request frame: no PATH_INFO")
        self.assert_refused(b"\0\0\0\0\0", 400, "malformed request frame: no flags")
        self.assert_refused(frame(good + [("CONTENT_LENGTH", "-1")]), 400,
                            "malformed request frame: CONTENT_LENGTH '-1'")
        self.assert_refused(b"\0\x7f\xff\xff\xff", 431, "request frame too large")

    def test_a_connection_closed_in_a_frame_or_its_body_is_dropped_quietly(self):
        before = self.loader.stderr()
        whole = request_frame("POST", "/body?read", body=b"0123456789")
        for cut in (1, 4, 12, len(whole) - 10, len(whole) - 3):
            c = self.connect(self.loader)
            c.send(whole[:cut])
            c.sock.shutdown(socket.SHUT_WR)
            self.assertTrue(c.at_eof(), cut)
        self.assertEqual(self.ask("GET", "/list").body, b"hello world")
        self.assertEqual(self.loader.stderr(), before)


if __name__ == "__main__":
    unittest.main()
