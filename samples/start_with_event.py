"""Start-with-event: the first vote of a poll creates the poll, without a race.

``send_event(workflow_id, name, payload, start=StartSpec(script, args))``
starts the instance if it does not exist and stores the event in the same
transaction, so twenty voters arriving at once give one poll and twenty
votes. The same from the shell::

    jsflow event poll-1 vote '"ann"' --start samples/start_with_event.js --args '[3]'

Run it: ``python samples/start_with_event.py``.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from jsflow.host import StartSpec, WorkflowHost

SCRIPT = Path(__file__).with_name("start_with_event.js").read_text(encoding="utf-8")


def main() -> Any:
    with WorkflowHost("memory://") as host:
        host.register_script("poll", SCRIPT)
        voters = [f"voter-{i}" for i in range(20)]
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(
                pool.map(
                    lambda v: host.send_event("poll-1", "vote", v, start=StartSpec("poll", [20])), voters
                )
            )
        return host.get("poll-1").value


if __name__ == "__main__":
    print(main())
