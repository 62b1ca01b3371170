"""A small Flask app for ferry: `ferry start examples/flask-app`
(after `pip install -r examples/flask-app/requirements.txt`).

    GET  /                 -> a greeting with the pid
    POST /echo             -> echoes the JSON request body back
    GET  /stream?n=5&ms=0  -> a streamed (chunked) response, one line per chunk
    GET  /whoami           -> how the request reached the app: its URL, scheme, whether
                              Flask sees it as secure, the client address
"""

import os
import time

from flask import Flask, Response, jsonify, request

app = Flask(__name__)


@app.get("/")
def hello():
    return "Hello from Flask on ferry! (pid %d)\n" % os.getpid()


@app.post("/echo")
def echo():
    data = request.get_json(silent=True)
    if data is None:
        return jsonify(error="expected a JSON request body"), 400
    return jsonify(data)


@app.get("/whoami")
def whoami():
    return jsonify(
        url=request.url,
        scheme=request.scheme,
        is_secure=request.is_secure,
        remote_addr=request.remote_addr,
        x_forwarded_for=request.headers.get("X-Forwarded-For"),
    )


@app.get("/stream")
def stream():
    n = max(0, min(request.args.get("n", 5, type=int), 10000))
    ms = max(0, min(request.args.get("ms", 0, type=int), 10000))

    def generate():
        for i in range(n):
            if i and ms:
                time.sleep(ms / 1000.0)
            yield "line %d of %d from pid %d\n" % (i + 1, n, os.getpid())

    return Response(generate(), mimetype="text/plain")


if __name__ == "__main__":
    app.run(debug=True)
