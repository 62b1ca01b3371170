#!/usr/bin/env python3
"""App-fault benchmarks of issue 9 (a benchmark, not a test: it prints figures, asserts nothing).

Usage: bench/reliability.py FERRY_BINARY TESTAPP_BINARY [--only NAME]

Needs wrk. Every server and app process it measures is one it started itself (a ferry with its
own instance registry, and that ferry's app processes); it kills nothing else.

1. crash storm of young processes: --min-instances 3; every app process is SIGKILLed every
   0.2 s for 10 s while one client sends requests; then the time until 3 processes are ready
   again, and the client's longest wait during the storm.
2. an app that exits after every 50 requests (TESTAPP_CRASH_AFTER=50), pool of 6: requests
   served per second under `wrk -c6` for 12 s, against the same app without crashes.
3. a broken restart: --max-pool-size 1, then the app's new code fails to start and
   `ferry restart` is run: its exit code, and what `wrk -c4` sees for 10 s after it.
4. a healthy restart of a pool of one: --max-pool-size 1, `wrk -c4` for 10 s with
   `ferry restart` run 2 s in: its exit code and the failed requests.

Each row can be run alone: bench/reliability.py FERRY TESTAPP --only "broken restart".
"""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Ferry:
    def __init__(self, ferry, work, command, args, env=None):
        self.ferry = ferry
        self.port = free_port()
        self.registry = tempfile.mkdtemp(dir=work)
        full_env = dict(os.environ, FERRY_INSTANCE_REGISTRY_DIR=self.registry, **(env or {}))
        self.env = full_env
        self.proc = subprocess.Popen(
            [ferry, "start", work, "--port", str(self.port), "--app-start-command", command]
            + args,
            env=full_env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def status(self):
        out = subprocess.run(
            [self.ferry, "status", "--json", "--port", str(self.port)],
            env=self.env,
            capture_output=True,
            timeout=10,
        )
        if out.returncode != 0:
            return None
        return json.loads(out.stdout)

    def processes(self):
        status = self.status()
        return status["groups"][0]["processes"] if status else []

    def ready_count(self):
        return sum(1 for p in self.processes() if p["state"] == "ready")

    def wait_ready(self, count, limit_s):
        deadline = time.monotonic() + limit_s
        while time.monotonic() < deadline:
            if self.ready_count() >= count:
                return True
            time.sleep(0.02)
        return False

    def stop(self):
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def get(port, timeout_s):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=timeout_s) as r:
            r.read()
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except Exception:
        return None


def wrk(port, connections, seconds):
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", f"http://127.0.0.1:{port}/"],
        capture_output=True,
        text=True,
    ).stdout
    total = int(re.search(r"(\d+) requests in", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {
        "requests": total,
        "per_second": total / seconds,
        "non_2xx": int(non2xx.group(1)) if non2xx else 0,
        "socket_errors": sum(map(int, errors.groups())) if errors else 0,
    }


def crash_storm(ferry_bin, testapp, work):
    f = Ferry(ferry_bin, work, testapp, ["--min-instances", "3"])
    try:
        f.wait_ready(3, 30)
        longest = [0.0]
        failed = [0]
        storming = threading.Event()
        storming.set()

        def client():
            while storming.is_set():
                started = time.monotonic()
                status = get(f.port, 90)
                longest[0] = max(longest[0], time.monotonic() - started)
                failed[0] += status != 200
        t = threading.Thread(target=client)
        t.start()
        end = time.monotonic() + 10
        kills = 0
        while time.monotonic() < end:
            for p in f.processes():
                if p.get("pid"):
                    try:
                        os.kill(p["pid"], signal.SIGKILL)
                        kills += 1
                    except ProcessLookupError:
                        pass
            time.sleep(0.2)
        storm_over = time.monotonic()
        live_at_end = len(f.processes())
        back = f.wait_ready(3, 90)
        recovery_s = time.monotonic() - storm_over if back else None
        storming.clear()
        t.join(timeout=100)
        return {
            "kills": kills,
            "processes_at_storm_end": live_at_end,
            "seconds_back_to_min_instances": recovery_s,
            "longest_request_wait_s": longest[0],
            "failed_requests": failed[0],
        }
    finally:
        f.stop()


def die_every_50(ferry_bin, testapp, work):
    results = {}
    for name, env in [("crashing", {"TESTAPP_CRASH_AFTER": "50"}), ("healthy", {})]:
        f = Ferry(ferry_bin, work, testapp, ["--min-instances", "6", "--max-pool-size", "6"], env)
        try:
            f.wait_ready(6, 30)
            results[name] = wrk(f.port, 6, 12)
        finally:
            f.stop()
    results["ratio"] = results["crashing"]["per_second"] / results["healthy"]["per_second"]
    return results


def broken_restart(ferry_bin, testapp, work):
    flag = os.path.join(work, "broken")
    command = f"sh -c 'if [ -e {flag} ]; then echo new code broken >&2; exit 1; fi; exec {testapp}'"
    f = Ferry(ferry_bin, work, command, ["--max-pool-size", "1"])
    try:
        f.wait_ready(1, 30)
        open(flag, "w").close()
        restart = subprocess.run(
            [ferry_bin, "restart", "--port", str(f.port)],
            env=f.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        load = wrk(f.port, 4, 10)
        return {
            "restart_exit_code": restart.returncode,
            "restart_said": (restart.stdout + restart.stderr).strip()[:200],
            **load,
            "failed": load["non_2xx"] + load["socket_errors"],
        }
    finally:
        f.stop()
        os.remove(flag)


def healthy_restart(ferry_bin, testapp, work):
    f = Ferry(ferry_bin, work, testapp, ["--max-pool-size", "1"])
    try:
        f.wait_ready(1, 30)
        result = {}
        load = threading.Thread(target=lambda: result.update(wrk(f.port, 4, 10)))
        load.start()
        time.sleep(2)
        restart = subprocess.run(
            [ferry_bin, "restart", "--port", str(f.port)],
            env=f.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        load.join()
        return {
            "restart_exit_code": restart.returncode,
            "restart_said": (restart.stdout + restart.stderr).strip()[:200],
            **result,
            "failed": result["non_2xx"] + result["socket_errors"],
        }
    finally:
        f.stop()


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    ferry_bin, testapp = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    only = sys.argv[sys.argv.index("--only") + 1] if "--only" in sys.argv else None
    with tempfile.TemporaryDirectory(prefix="ferry-reliability-") as work:
        for name, bench in [
            ("crash storm", crash_storm),
            ("die every 50 requests", die_every_50),
            ("broken restart", broken_restart),
            ("healthy restart", healthy_restart),
        ]:
            if only is None or only == name:
                print(f"{name}: {json.dumps(bench(ferry_bin, testapp, work))}", flush=True)


if __name__ == "__main__":
    main()
