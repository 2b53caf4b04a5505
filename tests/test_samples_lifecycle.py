"""The issue 20 samples run and do what their docstrings say."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _repo_on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(REPO))


def test_child_workflows() -> None:
    from samples import child_workflows

    assert child_workflows.main() == {
        "order": "O-7",
        "receipts": [{"box": "a", "tracking": "TRK-1"}, {"box": "O-7.child-1", "failed": "cancelled"}],
    }


def test_start_with_event() -> None:
    from samples import start_with_event

    assert start_with_event.main()["votes"] == 20


def test_schedules() -> None:
    from samples import schedules

    assert schedules.main() == [f"morning@203001{d:02d}T080000Z" for d in range(7, 12)]


def test_patches() -> None:
    from samples import patches

    assert patches.main() == {
        "old": "charged 50",
        "new": "blocked",
        "old_patches": [],
        "new_patches": ["fraud-check"],
    }


def test_queries() -> None:
    from samples import queries

    first, second, final = queries.main()
    assert first["missing"] == 2 and second["approvers"] == ["ann"] and final["stage"] == "approved"


def test_cancel_cleanup() -> None:
    from samples import cancel_cleanup

    out = cancel_cleanup.main()
    assert out["status"] == "cancelled" and out["released"] == ["LIS-BER-12A"]
    assert out["timeline"][-1] == "cancelled" and "cancel" in out["timeline"]
