#!/usr/bin/env python3
"""Tops a benchmark user up to N projects and one project up to N audit rows (its create plus
N-1 PATCH updates), through the HTTP API, then checks both totals and exits 1 when either is not
N. Prints the project's id. Used by bench/growth.sh:

    bench/seed.py http://127.0.0.1:PORT JWT 200 [PROJECT_ID]

Without PROJECT_ID the first project created becomes the one with the trail. Creates run on
8 threads (one keep-alive connection each); the updates run in order on one connection, since
concurrent updates of one project would race on its version.
"""
import http.client
import json
import sys
import threading
import time
import urllib.parse

THREADS = 8


class Api:
    def __init__(self, base, jwt):
        url = urllib.parse.urlsplit(base)
        self.conn = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
        self.headers = {"Authorization": "Bearer " + jwt, "Content-Type": "application/json"}

    def call(self, method, path, body=None):
        self.conn.request(method, path, body=json.dumps(body) if body is not None else None,
                          headers=self.headers)
        resp = self.conn.getresponse()
        data = resp.read()
        if resp.status >= 300:
            raise SystemExit(f"seed: {method} {path} -> {resp.status}: {data[:300]!r}")
        return resp, json.loads(data) if data else None

    def create(self, i):
        _, project = self.call("POST", "/api/projects", {
            "name": f"seed {i}", "description": "infusion pump for hospital use",
            "intended_use": "deliver fluids", "device_type": "pump"})
        return project["id"]

    def list_total(self):
        resp, _ = self.call("GET", "/api/projects?limit=1")
        return int(resp.getheader("X-Total-Count"))

    def trail_total(self, project_id):
        return self.call("GET", f"/api/audit/trail/{project_id}?limit=1")[1]["total_count"]


def main():
    base, jwt, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    api = Api(base, jwt)
    api.call("GET", "/api/users/me")
    started = time.time()
    have = api.list_total()
    project_id = int(sys.argv[4]) if len(sys.argv) > 4 else None
    if project_id is None:
        project_id = api.create(have + 1)
        have += 1
    todo = list(range(have + 1, n + 1))
    failures = []

    def creator(part):
        try:
            worker = Api(base, jwt)
            for i in part:
                worker.create(i)
        except BaseException as e:  # SystemExit from call() too
            failures.append(e)

    threads = [threading.Thread(target=creator, args=(todo[t::THREADS],)) for t in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if failures:
        raise SystemExit(f"seed: {len(failures)} creating threads failed, first: {failures[0]}")
    for i in range(api.trail_total(project_id), n):
        api.call("PATCH", f"/api/projects/{project_id}", {"description": f"revision {i}"})
    listed, trail = api.list_total(), api.trail_total(project_id)
    if listed != n or trail != n:
        raise SystemExit(f"seed: wanted {n} projects and {n} audit rows for project {project_id}, "
                         f"the API reports {listed} and {trail}")
    print(f"seed: {n} projects, {n} audit rows for project {project_id} "
          f"in {time.time() - started:.1f}s", file=sys.stderr)
    print(project_id)


if __name__ == "__main__":
    main()
