"""The connection loop: poll the listener and the kept-alive connections from
ferry, receive, and serve their requests one after the other; or, in the thread
concurrency model, serve each connection in a thread of its own."""

import functools
import select
import socket
import sys
import threading

from . import DRAIN_LIMIT, MAX_HEAD, RECV_SIZE, BadRequest, ClientGone, log, shutdown
from . import response
from .file_wrapper import FileWrapper
from .frame import START, frame_complete, read_frame
from .request import read_request


class Server(object):
    """Serves `app` on a listening socket until SIGTERM / SIGINT."""

    def __init__(self, app, development, threaded=False):
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
            "wsgi.multithread": threaded,
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

    def serve_threads(self, listener):
        """The thread concurrency model: accept here, and serve each connection
        from ferry in a thread of its own, so that a request waiting on I/O does
        not hold up the one on the next connection. ferry opens no more
        connections than the requests it sends at once, so that bounds the
        threads. A stop (SIGTERM / SIGINT, handled in this thread) wakes the
        threads waiting for a request and lets the busy ones finish theirs."""
        lock = threading.Lock()
        conns = {}  # socket -> busy
        workers = []
        try:
            while not shutdown.stop:
                try:
                    sock, _ = listener.accept()
                except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                    continue
                # A stop signalled while the thread is set up only sets shutdown.stop.
                shutdown.busy = True
                with lock:
                    conns[sock] = False
                worker = threading.Thread(target=self._serve_connection, args=(sock, conns, lock),
                                          name="ferry-wsgi-conn", daemon=True)
                worker.start()
                workers = [w for w in workers if w.is_alive()]
                workers.append(worker)
                shutdown.busy = False
        except shutdown.Stop:
            pass
        finally:
            shutdown.stop = True
            with lock:
                for sock, busy in conns.items():
                    if not busy:
                        try:
                            sock.shutdown(socket.SHUT_RD)  # recv returns b""; a reply can still go out
                        except OSError:
                            pass
            for worker in workers:
                worker.join()

    def _serve_connection(self, sock, conns, lock):
        entry = [sock, b""]
        rbuf = bytearray(RECV_SIZE)
        try:
            while not shutdown.stop:
                try:
                    n = sock.recv_into(rbuf)
                except OSError:
                    return
                # Busy from here: a stop now lets this request finish. Data that came
                # before a stop's shutdown(SHUT_RD) is still received and served.
                with lock:
                    conns[sock] = True
                keep = self.serve_received(entry, rbuf, n)
                with lock:
                    conns[sock] = False
                if not keep:
                    return
        finally:
            with lock:
                del conns[sock]
            sock.close()

    def serve_ready(self, entry):
        """The connection is readable: receive, then serve every complete
        request. Returns False when the connection must be closed."""
        try:
            n = entry[0].recv_into(self.rbuf)
        except OSError:
            return False
        return self.serve_received(entry, self.rbuf, n)

    def serve_received(self, entry, rbuf, n):
        """Serve every complete request of what is pending on the connection plus
        the `n` bytes just received into `rbuf`."""
        sock = entry[0]
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
