"""Schedules: a report every weekday at 09:00 Paris time.

``add_schedule(name, cron, script, args, timezone=, overlap=, catch_up=)``;
workers (``jsflow worker``, ``jsflow serve``) start each due slot once, as
instance ``{name}@{slot in UTC}``. The same from the shell::

    jsflow schedule add morning '0 9 * * 1-5' samples/scheduled_report.js '"sales"' --timezone Europe/Paris

Run it: ``python samples/schedules.py`` (a fake clock plays a week in a moment).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from jsflow.host import WorkflowHost

SCRIPT = Path(__file__).with_name("scheduled_report.js").read_text(encoding="utf-8")


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2030, 1, 6, 12, 0, tzinfo=UTC)  # a Sunday

    def __call__(self) -> datetime:
        return self.now


def main() -> list[str]:
    clock = Clock()
    with WorkflowHost("memory://", clock=clock) as host:
        host.register_script("report", SCRIPT)
        host.add_schedule("morning", "0 9 * * 1-5", "report", ["sales"], timezone="Europe/Paris")
        for _ in range(7 * 24 * 4):  # a worker pass every 15 minutes for a week
            clock.now += timedelta(minutes=15)
            host.run_due()
        return sorted(i.workflow_id for i in host.list(script="report"))


if __name__ == "__main__":
    print(main())
