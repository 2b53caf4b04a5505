"""schemathesis against the app's own OpenAPI document on a real uvicorn:
no 5xx and no response that breaks the documented schema, whatever it sends.

Bounded: a fixed number of generated requests over all operations (about a
minute at most on a loaded machine)."""

from __future__ import annotations

import gc
from pathlib import Path

import schemathesis

# Imported at collection, not lazily inside the test: pytest rewrites schemathesis's
# modules (it is a plugin) with ast.parse, and a lazy import in the middle of the run
# once failed in CPython 3.11's AST constructor ("recursion depth mismatch"), an
# interpreter error unrelated to what this test checks.
import schemathesis.specs.openapi.schemas
from _server_helpers import ADMIN, ECHO, EVENTS, HOOKED, register, serve
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from jsflow.host import WorkflowHost

SEEN: list[tuple[str, str, int]] = []
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


def test_no_server_errors_and_no_schema_violations(tmp_path: Path) -> None:
    with WorkflowHost(f"sqlite:///{tmp_path / 's.db'}") as host, serve(host, worker=False) as served:
        register(served, hooked=HOOKED, events=EVENTS, echo=ECHO)
        with served.client() as c:
            for i in range(3):
                c.post("/v1/workflows", json={"script": "events", "workflow_id": f"w{i}"})
        schema = schemathesis.openapi.from_url(f"{served.url}/openapi.json")
        strategy = schema.as_strategy() | schema.as_strategy(schemathesis.GenerationMode.NEGATIVE)
        headers = st.sampled_from([{"Authorization": f"Bearer {ADMIN}"}, {}, {"Authorization": "Bearer bad"}])

        @settings(
            max_examples=600,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=strategy, auth=headers)
        def run(case: schemathesis.Case, auth: dict[str, str]) -> None:
            case.headers = {**(case.headers or {}), **auth}
            response = case.call(base_url=served.url)
            case.validate_response(response, checks=CHECKS)
            SEEN.append((case.method, case.path, response.status_code))

        # No automatic garbage collection while hypothesis runs: twice in a full-suite run,
        # hypothesis's own ast.parse died in CPython 3.11's AST constructor ("recursion depth
        # mismatch"), an interpreter error that appears when something fails inside that
        # conversion; a collection (and the finalizers it runs) in the middle of it is the
        # likeliest trigger. Not yet explained: see the closing note of issue 18.
        gc.collect()
        gc.disable()
        try:
            run()
        finally:
            gc.enable()
        assert len({path for _, path, _ in SEEN}) >= 10  # every operation was exercised
        assert any(200 <= status < 300 for *_, status in SEEN)
