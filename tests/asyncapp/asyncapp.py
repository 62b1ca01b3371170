"""A generic async app for ferry's end-to-end tests: a stdlib asyncio HTTP/1.1 server on
127.0.0.1:$PORT that answers slowly without holding a thread, as uvicorn or Node would.

It reports what it served at once, so tests assert overlap from the app, not from timing:

* ``GET /sleep?ms=N`` waits N ms (default 1000), then answers JSON: ``pid``, ``in_flight``
  (requests in this process when it finished, itself included) and ``peak_in_flight`` (the
  most this process has had at once).
* ``GET /stats`` answers the same without waiting, plus ``served`` and ``tunnels``.
* ``GET /upgrade`` with ``Upgrade: echo`` answers 101 and then echoes bytes until the client
  closes (a WebSocket-like tunnel); tunnels are not requests in flight.
* anything else: 200 ``hello from PID``.

Keep-alive as HTTP/1.1 has it; a body (Content-Length) is read and ignored; chunked
request bodies are refused with 411.
"""

import asyncio
import json
import os
import sys

state = {"in_flight": 0, "peak_in_flight": 0, "served": 0, "tunnels": 0}


def answer(status, reason, body, content_type="text/plain"):
    head = (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def report(**extra):
    fields = {"pid": os.getpid(), **state, **extra}
    return answer(200, "OK", json.dumps(fields).encode(), "application/json")


def query_ms(target, default):
    _, _, query = target.partition("?")
    for pair in query.split("&"):
        name, _, value = pair.partition("=")
        if name == "ms" and value.isdigit():
            return int(value)
    return default


async def tunnel(reader, writer):
    state["tunnels"] += 1
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    finally:
        state["tunnels"] -= 1


async def serve(reader, writer):
    try:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                return
            lines = head.decode("latin-1").split("\r\n")
            method, target, _ = (lines[0].split(" ") + ["", ""])[:3]
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            if "chunked" in headers.get("transfer-encoding", "").lower():
                writer.write(answer(411, "Length Required", b"give Content-Length"))
                await writer.drain()
                return
            length = headers.get("content-length", "0")
            await reader.readexactly(int(length) if length.isdigit() else 0)
            path = target.partition("?")[0]
            if path == "/upgrade" and headers.get("upgrade", "").lower() == "echo":
                writer.write(b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
                             b"Upgrade: echo\r\n\r\n")
                await writer.drain()
                await tunnel(reader, writer)
                return
            state["in_flight"] += 1
            state["peak_in_flight"] = max(state["peak_in_flight"], state["in_flight"])
            try:
                if path == "/sleep":
                    await asyncio.sleep(query_ms(target, 1000) / 1000)
                    response = report()
                elif path == "/stats":
                    response = report()
                else:
                    response = answer(200, "OK", f"hello from {os.getpid()}".encode())
            finally:
                state["in_flight"] -= 1
                state["served"] += 1
            writer.write(response)
            await writer.drain()
            if headers.get("connection", "").lower() == "close":
                return
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()


async def main():
    port = os.environ.get("PORT")
    if port is None or not port.isdigit():
        sys.exit(f"asyncapp: PORT must be a port number, got {port!r}")
    server = await asyncio.start_server(serve, "127.0.0.1", int(port), backlog=1024)
    bound = server.sockets[0].getsockname()[1]
    print(f"asyncapp listening on 127.0.0.1:{bound} pid {os.getpid()}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
