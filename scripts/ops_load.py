#!/usr/bin/env python3
"""Steady, bounded HTTP load for scripts/ops-test.sh (standard library only).

Sends a fixed mix of requests through nginx from a few threads at a paced rate until the stop
file appears, --max-seconds pass or --max-requests have been sent, whichever comes first, and
counts every request that did not get its expected status. Each request opens its own
connection (urllib sends `Connection: close`), so a client never reuses a connection that
nginx is closing during a reload: a failure counted here is a failure a fresh client would see.

While running it rewrites --progress-file (JSON: total, failed, elapsed) a few times a second so
the caller can wait for "N more requests after the event" instead of sleeping. At the end it
writes --report (JSON with the first failures) and prints one summary line.

Mixes:
  get    GET /health/live, /health, /api/users/me, /api/projects?limit=5, /api/projects/{id}
  mixed  the same plus POST /api/projects (expects 201) every fifth request
"""
import argparse
import json
import os
import threading
import time
import urllib.error
import urllib.request


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--base", required=True, help="e.g. http://127.0.0.1:18080 (loopback only)")
    p.add_argument("--token", required=True, help="Bearer token (API key)")
    p.add_argument("--project-ids", required=True, help="comma-separated ids of existing projects")
    p.add_argument("--mix", choices=["get", "mixed"], default="get")
    p.add_argument("--threads", type=int, default=6)
    p.add_argument("--rate", type=float, default=250.0, help="total requests per second (0: unpaced)")
    p.add_argument("--max-seconds", type=float, default=120.0)
    p.add_argument("--max-requests", type=int, default=100000)
    p.add_argument("--timeout", type=float, default=30.0, help="per-request timeout, seconds")
    p.add_argument("--stop-file", required=True)
    p.add_argument("--progress-file", required=True)
    p.add_argument("--report", required=True)
    p.add_argument("--label", default="load")
    return p.parse_args()


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.total = 0
        self.failed = 0
        self.by_kind = {}
        self.failures = []

    def record(self, kind, ok, detail=None):
        with self.lock:
            self.total += 1
            ok_n, fail_n = self.by_kind.get(kind, (0, 0))
            if ok:
                self.by_kind[kind] = (ok_n + 1, fail_n)
            else:
                self.failed += 1
                self.by_kind[kind] = (ok_n, fail_n + 1)
                if len(self.failures) < 50:
                    self.failures.append(detail)


def requests_for(mix, project_ids):
    """The request cycle: (kind, method, path, expected status, body)."""
    cycle = [
        ("GET /health/live", "GET", "/health/live", 200, None),
        ("GET /api/projects", "GET", "/api/projects?limit=5", 200, None),
        ("GET /api/projects/{id}", "GET", None, 200, None),
        ("GET /health", "GET", "/health", 200, None),
        ("GET /api/users/me", "GET", "/api/users/me", 200, None),
    ]
    if mix == "mixed":
        cycle.insert(2, ("POST /api/projects", "POST", "/api/projects", 201, "new"))
    return cycle


def main():
    a = parse_args()
    if not (a.base.startswith("http://127.") or a.base.startswith("http://localhost")):
        raise SystemExit("ops_load.py: refusing a non-loopback target: " + a.base)
    project_ids = [p for p in a.project_ids.split(",") if p]
    if not project_ids:
        raise SystemExit("ops_load.py: --project-ids is empty")
    cycle = requests_for(a.mix, project_ids)
    stats = Stats()
    started = time.monotonic()
    deadline = started + a.max_seconds
    stop = threading.Event()
    slot_lock = threading.Lock()
    next_slot = [started]
    interval = 1.0 / a.rate if a.rate > 0 else 0.0
    headers = {"Authorization": "Bearer " + a.token, "Accept": "application/json"}
    seq = [0]

    def take_slot():
        """Pacing: hands out send times `interval` apart across all threads."""
        with slot_lock:
            seq[0] += 1
            n = seq[0]
            if n > a.max_requests:
                return None
            if not interval:
                return n
            slot = max(next_slot[0], time.monotonic() - 1.0)  # never burst to catch up >1 s
            next_slot[0] = slot + interval
        delay = slot - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        return n

    def one(n):
        kind, method, path, expected, body = cycle[n % len(cycle)]
        if path is None:
            path = "/api/projects/" + project_ids[n % len(project_ids)]
        data = None
        h = dict(headers)
        h["X-Request-ID"] = "%s-%d" % (a.label, n)
        if body == "new":
            data = json.dumps({"name": "%s project %d" % (a.label, n),
                               "description": "created by scripts/ops_load.py"}).encode()
            h["Content-Type"] = "application/json"
        req = urllib.request.Request(a.base + path, data=data, method=method, headers=h)
        t0 = time.monotonic()
        try:
            with urllib.request.urlopen(req, timeout=a.timeout) as resp:
                resp.read()
                status = resp.status
            err = None
        except urllib.error.HTTPError as e:
            status = e.code
            try:
                err = e.read()[:200].decode("utf-8", "replace")
            except Exception:  # the body is only for the report
                err = ""
        except Exception as e:  # connection refused/reset, timeout: a client-visible failure
            status = None
            err = "%s: %s" % (type(e).__name__, e)
        ok = status == expected
        detail = None if ok else {
            "at": round(t0 - started, 3), "request_id": h["X-Request-ID"], "method": method,
            "path": path, "status": status, "expected": expected, "error": err,
        }
        stats.record(kind, ok, detail)

    def worker():
        while not stop.is_set():
            n = take_slot()
            if n is None or stop.is_set():
                return
            one(n)

    def write_progress():
        with stats.lock:
            doc = {"total": stats.total, "failed": stats.failed,
                   "elapsed": round(time.monotonic() - started, 3)}
        tmp = a.progress_file + ".tmp"
        with open(tmp, "w") as f:
            json.dump(doc, f)
        os.replace(tmp, a.progress_file)

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(a.threads)]
    for t in threads:
        t.start()
    reason = "max-requests"
    while any(t.is_alive() for t in threads):
        write_progress()
        if os.path.exists(a.stop_file):
            reason = "stop-file"
            break
        if time.monotonic() >= deadline:
            reason = "max-seconds"
            break
        time.sleep(0.1)
    stop.set()
    for t in threads:
        t.join(a.timeout + 5)
    write_progress()

    report = {
        "label": a.label, "mix": a.mix, "stopped_by": reason,
        "elapsed_seconds": round(time.monotonic() - started, 3),
        "total": stats.total, "failed": stats.failed,
        "by_kind": {k: {"ok": v[0], "failed": v[1]} for k, v in sorted(stats.by_kind.items())},
        "first_failures": stats.failures,
    }
    with open(a.report, "w") as f:
        json.dump(report, f, indent=2)
    print("%s: %d requests in %.1f s, %d failed (stopped by %s)"
          % (a.label, stats.total, report["elapsed_seconds"], stats.failed, reason))


if __name__ == "__main__":
    main()
