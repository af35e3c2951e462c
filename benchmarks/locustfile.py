"""Dashboards left open: each client polls what the page polls (a staging's progress partial
every 2 s, the fleet table every 3 s) as HTMX does, with a session made by page_load.py.

Driven by benchmarks/page_load.py, which sets BENCH_SESSION_COOKIE, BENCH_STAGINGS (the live
stagings' ids) and BENCH_PACE (seconds between one client's polls; 0: as fast as it can).
"""

import os
import random

import gevent
from locust import FastHttpUser, constant, constant_pacing, task

SESSION = os.environ.get("BENCH_SESSION_COOKIE", "")
STAGINGS = [int(pk) for pk in os.environ.get("BENCH_STAGINGS", "").split(",") if pk]
PACE = float(os.environ.get("BENCH_PACE", "2"))
# 286 is HTMX's "stop polling": the answer for a staging (or fleet) where nothing changes.
ANSWERS = {200, 286}
HEADERS = {"HX-Request": "true", "Cookie": f"sessionid={SESSION}"}


class OpenDashboard(FastHttpUser):
    wait_time = constant_pacing(PACE) if PACE > 0 else constant(0)

    def on_start(self) -> None:
        # People open their pages at different moments: without this, all clients (started
        # within a second) would poll in lockstep, 50 requests in the same instant every 2 s.
        gevent.sleep(random.uniform(0, PACE))

    def _poll(self, path: str, name: str) -> None:
        with self.client.get(path, name=name, headers=HEADERS, allow_redirects=False,
                             catch_response=True) as response:
            if response.status_code in ANSWERS:
                response.success()
            else:
                response.failure(f"HTTP {response.status_code}")

    @task(3)
    def staging_progress(self) -> None:
        self._poll(f"/stagings/{random.choice(STAGINGS)}/progress/", "/stagings/<pk>/progress/")

    @task(2)
    def fleet_table(self) -> None:
        self._poll("/fleet/table/", "/fleet/table/")
