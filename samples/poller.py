"""A poller with ``continueAsNew``: the workflow keeps one id while each run's
journal stays at most three polls long.

``engine`` is importable for the CLI::

    jsflow run samples/poller.js job-9 --app samples.poller:engine
    jsflow worker --app samples.poller:engine
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from jsflow import WorkflowEngine
from jsflow.host import WorkflowHost

SCRIPT = Path(__file__).with_name("poller.js").read_text(encoding="utf-8")
READY_AFTER = 7  # the job reports done on its 7th check
CHECKS: dict[str, int] = {}
engine = WorkflowEngine()


@engine.step()
def job_status(job_id: str) -> dict[str, Any]:
    CHECKS[job_id] = CHECKS.get(job_id, 0) + 1
    done = CHECKS[job_id] >= READY_AFTER
    return {"done": done, "result": "report.pdf" if done else None}


def main() -> Any:
    """Fire the 10-minute timers with a fake clock until the job is done."""
    now = [datetime(2026, 1, 5, 9, 0, tzinfo=UTC)]
    engine.clock = lambda: now[0]
    with WorkflowHost("memory://", engine=engine, clock=lambda: now[0]) as host:
        host.register_script("poller", SCRIPT)
        inst = host.start("poller", "job-9", workflow_id="poll-job-9")
        while not inst.is_finished:
            now[0] += timedelta(minutes=10)
            host.run_due()
            inst = host.get(inst.workflow_id)
        runs = [h for h in host.history(inst.workflow_id) if "continued_as_new" in h.detail]
        print(f"{inst.workflow_id}: {inst.status} {inst.value} after {len(runs)} continueAsNew")
        return inst.value


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
