"""Fan-out with ``Promise.all`` over async steps: three 0.3 s lookups take about 0.3 s.

``engine`` is importable for the CLI::

    jsflow run samples/fan_out.js u-7 --app samples.fan_out:engine
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import Any

from jsflow import WorkflowEngine
from jsflow.host import WorkflowHost

SCRIPT = Path(__file__).with_name("fan_out.js").read_text(encoding="utf-8")
DELAY = 0.3
engine = WorkflowEngine()


@engine.step()
async def load_profile(user_id: str) -> dict[str, Any]:
    await asyncio.sleep(DELAY)  # an HTTP call in real life
    return {"id": user_id, "name": "Ada"}


@engine.step()
async def load_orders(user_id: str) -> list[str]:
    await asyncio.sleep(DELAY)
    return ["o-1", "o-2", "o-3"]


@engine.step()
async def credit_score(user_id: str) -> int:
    await asyncio.sleep(DELAY)
    return 712


def main() -> tuple[Any, float]:
    with WorkflowHost("memory://", engine=engine) as host:
        host.register_script("fan_out", SCRIPT)
        started = time.perf_counter()
        inst = host.start("fan_out", "u-7")
        took = time.perf_counter() - started
        print(f"{inst.status} {inst.value} in {took:.2f}s (3 steps of {DELAY}s each, concurrently)")
        return inst.value, took


if __name__ == "__main__":
    sys.exit(0 if main()[0] else 1)
