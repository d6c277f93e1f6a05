"""The HTTP API against its own OpenAPI schema (schemathesis), served by a running Daemon on port 0.

Every operation, generated parameters and bodies, called as nobody, as the installer and as staff:
no answer is a 5xx, and a write without the role it needs is refused (401/403) and leaves the journal
as it was (no acknowledgement, no mute).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from daemon.app.runtime import Daemon
from daemon.ports.clock import Clock
from daemon.ports.model import Sample
from tests.conftest import make_config
from tests.daemon.api.test_api import CONFIG
from tests.fuzz.budget import LONG

TOKENS = {"staff": "staff-secret", "installer": "inst-secret"}
API = CONFIG.replace(
    "api: {enabled: true, host: 127.0.0.1, port: 0}",
    "api:\n  enabled: true\n  host: 127.0.0.1\n  port: 0\n  tokens:\n"
    f"    - {{name: zhang, role: staff, token: {{value: {TOKENS['staff']}}}}}\n"
    f"    - {{name: install, role: installer, token: {{value: {TOKENS['installer']}}}}}\n",
)
# who may write where; GET is open on the box's LAN
ROLES = {("POST", "/api/v1/alerts/{alert_id}/ack"): {"staff", "manager"},
         ("POST", "/api/v1/alerts/{alert_id}/action"): {"staff", "manager"},
         ("POST", "/api/v1/alerts/{alert_id}/close"): {"manager"},
         ("POST", "/api/v1/zones/{zone_id}/mute"): {"staff", "manager", "installer"},
         ("DELETE", "/api/v1/mutes/{mute_id}"): {"staff", "manager", "installer"},
         ("POST", "/api/v1/lots"): {"staff", "manager"},
         ("POST", "/api/v1/lots/{code}/move"): {"staff", "manager"},
         ("POST", "/api/v1/lots/{code}/checkout"): {"staff", "manager"},
         ("POST", "/api/v1/lots/{code}/split"): {"staff", "manager"},
         ("POST", "/api/v1/lots/merge"): {"staff", "manager"},
         ("POST", "/api/v1/lots/{code}/transit"): {"staff", "manager"},
         ("POST", "/api/v1/precool"): {"staff", "manager"},
         ("POST", "/api/v1/precool/{run_id}/stop"): {"staff", "manager"}}
# writes anyone may make: signing in and out (docs/sign-in.md); a wrong password is a 401, never a 500
OPEN_WRITES = {("POST", "/api/v1/session"), ("DELETE", "/api/v1/session")}


class Served:
    """A Daemon with its API on a free port, run on its own event loop in a thread."""

    def __init__(self, tmp: Path) -> None:
        self.daemon = Daemon(make_config(tmp, API), clock=Clock())
        self.ready = threading.Event()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_until_complete, args=(self._main(),), daemon=True)
        self.thread.start()
        assert self.ready.wait(30), "the daemon's API did not start"
        self.base = f"http://127.0.0.1:{self.daemon.api_port}"

    async def _main(self) -> None:
        d = self.daemon
        await d.start()
        # something to acknowledge: alarm 1 is firing (the sensor is silent, values above the range)
        await d.pipeline.emit([Sample("s1", "temperature", 30.0, "C")])
        self.ready.set()
        await d.wait()
        await d.stop()

    def writes(self) -> tuple[int, int, int]:
        """(acknowledged alarms, mutes, audit-log entries: every lot change) in the journal."""
        j = self.daemon.journal
        audit = int(j.read("SELECT COUNT(*) FROM audit_log")[0][0])
        return sum(1 for a in j.alerts.find(limit=100_000) if a.acked is not None), len(j.mutes.find()), audit

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.daemon.request_stop)
        self.thread.join(timeout=30)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    s = Served(tmp_path_factory.mktemp("api"))
    yield s
    s.close()


@pytest.fixture(scope="module")
def api_schema(served: Served) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(f"{served.base}/openapi.json")


EXAMPLES = settings(max_examples=200 if LONG else 15, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


def check(case: schemathesis.Case, who: str, served: Served, valid: bool) -> None:
    headers = {} if who == "nobody" else {"Authorization": f"Bearer {TOKENS[who]}"}
    needs = ROLES.get((case.method.upper(), case.path))
    before = served.writes()
    response = case.call(base_url=served.base, headers=headers, timeout=10)
    assert response.status_code < 500, f"{case.method} {case.formatted_path}: {response.status_code} {response.text}"
    if needs is not None and who not in needs:
        # a valid request is refused for its missing role; an invalid one may be refused for its body first
        # (FastAPI parses JSON before it runs dependencies), but never accepted
        allowed = {401 if who == "nobody" else 403} | (set() if valid else {400, 415, 422})
        assert response.status_code in allowed, (
            f"{case.method} {case.formatted_path} as {who}: {response.status_code} {response.text}")
        assert served.writes() == before, f"{case.method} {case.formatted_path} as {who} changed the journal"


# schemathesis' own pytest loader (from_fixture) trips over pytest 9 (`Function._nodeid`), so the
# operations' strategies are drawn with plain hypothesis: valid and invalid inputs, per operation.
@pytest.mark.parametrize("who", ["nobody", "installer", "staff"])
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_server_error_and_no_write_without_the_role(
        who: str, mode: GenerationMode, served: Served, api_schema: schemathesis.BaseSchema) -> None:
    operations = [r.ok() for r in api_schema.get_all_operations()]
    assert len(operations) >= 10
    tried = 0
    for op in operations:
        @EXAMPLES
        @given(op.as_strategy(generation_mode=mode))
        def run(case: schemathesis.Case) -> None:
            check(case, who, served, valid=mode is GenerationMode.POSITIVE)

        try:
            run()
            tried += 1
        except Unsatisfiable:  # no invalid input exists for an operation without parameters (GET /healthz)
            assert mode is GenerationMode.NEGATIVE, op
    assert tried >= len(ROLES) + 3


def test_every_write_is_in_the_role_table(served: Served) -> None:
    import json
    import urllib.request

    with urllib.request.urlopen(f"{served.base}/openapi.json", timeout=10) as r:  # noqa: S310 - an http:// URL of the server this test started
        doc = json.load(r)
    writes = {(m.upper(), p) for p, ops in doc["paths"].items() for m in ops if m.upper() != "GET"}
    assert writes == set(ROLES) | OPEN_WRITES, "a new write operation: add the roles it needs to ROLES"
