"""Shared constants and helpers for CLI tests (imported as ``cli_helpers``)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from click.testing import Result

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "samples"

APPROVAL = """
async function main(amount) {
  await sleep('1h');
  const ok = await getApproval('manager', amount);
  return ok ? 'approved' : 'rejected';
}
"""

RACE = (SAMPLES / "payment_race.js").read_text(encoding="utf-8")

Invoke = Callable[..., Result]


def as_json(result: Result) -> Any:
    return json.loads(result.stdout)
