"""The connection loop: poll the listener and the kept-alive connections from
ferry, receive, and serve their requests one after the other (no threads)."""

import functools
import select
import sys

from . import DRAIN_LIMIT, MAX_HEAD, RECV_SIZE, BadRequest, ClientGone, log, shutdown
from . import response
from .file_wrapper import FileWrapper
from .frame import START, frame_complete, read_frame
from .request import read_request


class Server(object):
    """Serves `app` on a listening socket until SIGTERM / SIGINT."""

    def __init__(self, app, development):
        self.app = app
        self.development = development
        self.rbuf = bytearray(RECV_SIZE)
        # run_app(sock, environ, is_head, http11, keep): calls the app and sends its
        # response; returns keep-alive. A partial, not a method: one Python call less.
        self.run_app = functools.partial(response.run_app, app, development)
        self.base_environ = {
            "SCRIPT_NAME": "",
            "SERVER_SOFTWARE": "ferry",
            "wsgi.version": (1, 0),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": False,
            "wsgi.multiprocess": True,
            "wsgi.run_once": False,
            "wsgi.input_terminated": True,
            "wsgi.file_wrapper": FileWrapper,
        }

    def serve_forever(self, listener):
        poller = select.poll()
        lfd = listener.fileno()
        poller.register(lfd, select.POLLIN)
        conns = {}  # fd -> [socket, pending bytes]
        try:
            while True:
                shutdown.busy = False
                if shutdown.stop:
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
                    shutdown.busy = True
                    if not self.serve_ready(entry):
                        poller.unregister(fd)
                        del conns[fd]
                        entry[0].close()
                    shutdown.busy = False
                    if shutdown.stop:
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
            except BadRequest as e:
                status = "%d %s" % (e.status, response.ERROR_REASONS.get(e.status, "Bad Request"))
                log("bad request: %s" % e)
                try:
                    sock.sendall(response.simple_response(status, (status + "\n").encode(), False))
                except OSError:
                    pass
                return False
            except (ConnectionError, ClientGone, OSError):
                return False
            if not keep or shutdown.stop:
                return False
            if pending and not pending.strip(b"\r\n"):
                pending = b""  # stray CRLF after a request
            if not pending:
                entry[1] = b""
                return True
            # Pipelined bytes: serve the next request if its head is complete,
            # else keep them and wait (in poll) for the rest.
            if pending[:1] == START:
                if not frame_complete(pending):
                    entry[1] = pending
                    return True
            elif pending.find(b"\r\n\r\n") < 0 and len(pending) < MAX_HEAD:
                entry[1] = pending
                return True

    def handle_request(self, sock, pending):
        """Parse and answer one request from `pending` (receiving more as
        needed): a frame from ferry (frame.py) or an HTTP request (request.py),
        told apart by the first byte. Returns (keep_alive, rest_of_pending)."""
        if pending[:1] == START:
            environ, is_head, http11, keep, streaming, pending = read_frame(sock, pending, self.base_environ)
        else:
            environ, is_head, http11, keep, streaming, pending = read_request(sock, pending, self.base_environ)
        keep = self.run_app(sock, environ, is_head, http11, keep)
        if streaming is not None and streaming.left:
            if keep and streaming.left <= DRAIN_LIMIT:
                streaming.drain()
            else:
                keep = False
        return keep, pending
