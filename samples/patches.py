"""Patches: change a running workflow's script safely with ``patched()``.

Version 1 charged without a fraud check. Version 2 adds one behind
``patched("fraud-check")``: instances already past that point replay the
old path (``patched`` is false on their journal), new ones take the new path
and record a marker. ``jsflow replay --against NEW.js --json`` lists,
per instance, whether it replays and which patches it took; ``upgrade``
moves an instance only when it replays.

Run it: ``python samples/patches.py``.
"""

from __future__ import annotations

from typing import Any

from jsflow.host import WorkflowHost

V1 = """
async function main(amount) {
  await waitForEvent('confirmed');
  return await charge(amount);
}
"""
V2 = """
async function main(amount) {
  if (patched('fraud-check')) {
    if (await fraudScore(amount) > 0.8) return 'blocked';
  }
  await waitForEvent('confirmed');
  return await charge(amount);
}
"""


def main() -> dict[str, Any]:
    with WorkflowHost("memory://") as host:
        host.register_step_function("charge", lambda amount: f"charged {amount}")
        host.register_step_function("fraudScore", lambda amount: 0.9 if amount > 1000 else 0.1)
        host.register_script("payment", V1)
        host.start("payment", 50, workflow_id="old")
        v2 = host.register_script("payment", V2)
        reports = {r.workflow_id: r for r in host.replay_check(V2, script_name="payment")}
        host.upgrade("old", v2.hash)  # replays: patched() is false on its journal
        host.send_event("old", "confirmed")
        new = host.start("payment", 5000, workflow_id="new")
        return {
            "old": host.get("old").value,
            "new": new.value,
            "old_patches": list(reports["old"].patches),
            "new_patches": list(host.replay_check(V2, ["new"], include_finished=True)[0].patches),
        }


if __name__ == "__main__":
    print(main())
