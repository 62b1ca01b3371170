import base64, json, os, socket, sys, threading

RECORDS = sys.argv[1]
LOCK = threading.Lock()


def record(method, target, version, headers, body):
    line = json.dumps({
        "method": method.decode("latin-1"),
        "target": target.decode("latin-1"),
        "version": version.decode("latin-1"),
        "headers": [[n.decode("latin-1"), v.decode("latin-1")] for n, v in headers],
        "body_b64": base64.b64encode(body).decode("ascii"),
    }) + "\n"
    with LOCK:
        fd = os.open(RECORDS, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line.encode("ascii"))
        finally:
            os.close(fd)


def respond(conn, status, body):
    head = "HTTP/1.1 %s\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n" % (status, len(body))
    conn.sendall(head.encode("ascii") + body)


def serve(conn):
    buf = b""
    while True:
        while b"\r\n\r\n" not in buf:
            data = conn.recv(65536)
            if not data:
                return
            buf += data
        head, buf = buf.split(b"\r\n\r\n", 1)
        lines = head.split(b"\r\n")
        parts = lines[0].split(b" ")
        method, target, version = parts[0], b" ".join(parts[1:-1]), parts[-1]
        headers = []
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            # ferry writes "name: value": drop exactly the space it adds, keep anything else.
            headers.append((name, value[1:] if value.startswith(b" ") else value))
        lower = {n.lower(): v for n, v in headers}
        length = int(lower.get(b"content-length", b"0"))
        while len(buf) < length:
            data = conn.recv(65536)
            if not data:
                return
            buf += data
        body, buf = buf[:length], buf[length:]
        record(method, target, version, headers, body)
        path = target.split(b"?")[0]
        if path == b"/cut":
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789")
            return
        if path == b"/garbage":
            conn.sendall(b"THIS IS NOT HTTP\r\n\r\n")
            return
        if path == b"/upgrade" and lower.get(b"upgrade", b"").lower() == b"echo":
            conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n")
            data = buf
            while True:
                if data:
                    conn.sendall(data.upper())
                data = conn.recv(65536)
                if not data:
                    return
        if path == b"/refuse-upgrade":
            respond(conn, "200 OK", b"not upgraded")
        elif b"transfer-encoding" in lower:
            # ferry sends bodies de-chunked: this request cannot be framed; say so and stop.
            respond(conn, "500 Internal Server Error", b"Transfer-Encoding reached the app")
            return
        else:
            respond(conn, "200 OK", b"ok")


def serve_closing(conn):
    try:
        serve(conn)
    except OSError:
        pass
    finally:
        conn.close()


def main():
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", int(os.environ["PORT"])))
    listener.listen(128)
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=serve_closing, args=(conn,), daemon=True).start()


main()
