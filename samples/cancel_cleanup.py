"""Cancellation with cleanup: a cancelled booking releases what it holds.

``host.cancel(id, reason)`` rejects every pending wait with a
``CancelledError`` (``reason`` on it); ``catch``/``finally`` blocks run their
compensating steps (within the time budget and at most 100 journal
entries) and the instance ends "cancelled" with the cleanup in its
timeline. ``cancel(id, cleanup=False)`` (``jsflow cancel --no-cleanup``)
cancels at once instead.

Run it: ``python samples/cancel_cleanup.py``.
"""

from __future__ import annotations

from typing import Any

from jsflow.host import WorkflowHost

SCRIPT = """
async function main(trip) {
  const seat = await reserveSeat(trip);
  try {
    await waitForEvent('paid', { timeout: '1d' });
    return { trip, seat, status: 'booked' };
  } catch (e) {
    await releaseSeat(seat);  // runs for a timeout and for a cancellation alike
    if (e.name === 'CancelledError') console.log('cancelled:', e.reason);
    throw e;
  }
}
"""


def main() -> dict[str, Any]:
    released: list[str] = []
    with WorkflowHost("memory://") as host:
        host.register_step_function("reserveSeat", lambda trip: f"{trip}-12A")
        host.register_step_function("releaseSeat", lambda seat: released.append(seat) or seat)
        host.register_script("booking", SCRIPT)
        host.start("booking", "LIS-BER", workflow_id="b-1")
        inst = host.cancel("b-1", "customer changed plans")
        kinds = [h.kind for h in host.history("b-1")]
        return {
            "status": str(inst.status),
            "reason": inst.cancel_reason,
            "released": released,
            "timeline": kinds,
        }


if __name__ == "__main__":
    print(main())
