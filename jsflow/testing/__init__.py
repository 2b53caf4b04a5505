"""The store contract: one test suite every store backend passes.

Why it ships in the package: a third-party backend (another database, a
cloud service) proves itself against the same checks as jsflow's own memory,
SQLite and PostgreSQL stores. Use it from a pytest suite::

    from jsflow.testing import StoreContract

    class TestMyStore(StoreContract):
        def make_store(self, clock):
            return MyStore("...", clock=clock)   # fresh and empty, stamped by clock

Every ``test_*`` method then runs against it. Override the ``store`` fixture
instead when building a store needs other fixtures (a temporary directory, a
database schema). SQL backends built on ``jsflow.host.store.SQLStore`` can
subclass ``SQLStoreContract``, which adds migration and corrupt-row checks
and needs ``reopen`` (the same database, opened again).

Helpers for further tests of a backend: ``create(store, workflow_id)`` stores
a script and an instance; ``timer(wait_id, seconds)`` is a sleep wait due
``at(seconds)`` after the contract's start time. ``each(store)`` runs one
session operation in a transaction of its own: the store interface has no
one-shot methods (every caller opens a unit of work), and tests read better
without a ``with`` block per line.
"""

from __future__ import annotations

from ._store_contract import FakeClock, SQLStoreContract, StoreContract, at, create, each, timer

__all__ = ["FakeClock", "SQLStoreContract", "StoreContract", "at", "create", "each", "timer"]
