"""The plain (sync) twins of ``WorkflowHost``'s coroutines.

Why a mixin of its own: every operation exists as a coroutine (``a``-prefixed)
and as a plain method that drives it with ``jsflow.run_sync``; keeping the
plain ones here keeps the facade's module small. Each only forwards.
"""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Any

from jsflow import JournalEntry, run_sync

from ._query import HistoryPage, InstancePage
from ._start_event import StartSpec
from ._views import EventReceipt, HistoryItem, ReplayReport, TokenInfo, WorkflowInstance


class SyncTwins:
    """``start``, ``send_event``, ``resume``... as plain methods (see ``WorkflowHost``)."""

    def start(
        self,
        script_name: str,
        *args: Any,
        workflow_id: str | None = None,
        entry_point: str = "main",
        version: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> WorkflowInstance:
        """Sync ``astart``."""
        return run_sync(
            self.astart(
                script_name,
                *args,
                workflow_id=workflow_id,
                entry_point=entry_point,
                version=version,
                metadata=metadata,
            )
        )

    def get(self, workflow_id: str) -> WorkflowInstance:
        """Sync ``aget``."""
        return run_sync(self.aget(workflow_id))

    def list(
        self,
        *,
        status: str | list[str] | None = None,
        script: str | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[WorkflowInstance]:
        """Sync ``alist``."""
        return run_sync(
            self.alist(
                status=status,
                script=script,
                created_after=created_after,
                created_before=created_before,
                limit=limit,
                offset=offset,
            )
        )

    def cancel(self, workflow_id: str, reason: str | None = None, cleanup: bool = True) -> WorkflowInstance:
        """Sync ``acancel``."""
        return run_sync(self.acancel(workflow_id, reason, cleanup))

    def query(self, workflow_id: str, name: str, *args: Any) -> Any:
        """Sync ``aquery``."""
        return run_sync(self.aquery(workflow_id, name, *args))

    def list_queries(self, workflow_id: str) -> list[str]:
        """Sync ``alist_queries``."""
        return run_sync(self.alist_queries(workflow_id))

    def children(self, workflow_id: str) -> list[str]:
        """Sync ``achildren``."""
        return run_sync(self.achildren(workflow_id))

    def history(self, workflow_id: str) -> list[HistoryItem]:
        """Sync ``ahistory``."""
        return run_sync(self.ahistory(workflow_id))

    def journal(self, workflow_id: str) -> list[JournalEntry]:
        """Sync ``ajournal``."""
        return run_sync(self.ajournal(workflow_id))

    def send_event(
        self,
        workflow_id: str,
        name: str,
        payload: Any = None,
        *,
        idempotency_key: str | None = None,
        start: StartSpec | None = None,
    ) -> EventReceipt:
        """Sync ``asend_event``."""
        return run_sync(
            self.asend_event(workflow_id, name, payload, idempotency_key=idempotency_key, start=start)
        )

    def store_event(
        self, workflow_id: str, name: str, payload: Any = None, *, idempotency_key: str | None = None
    ) -> EventReceipt:
        """Sync ``astore_event``."""
        return run_sync(self.astore_event(workflow_id, name, payload, idempotency_key=idempotency_key))

    def deliver_events(self, workflow_id: str) -> int:
        """Sync ``adeliver_events``."""
        return run_sync(self.adeliver_events(workflow_id))

    def resume(self, workflow_id: str, value: Any = None, wait_id: int | None = None) -> WorkflowInstance:
        """Sync ``aresume``."""
        return run_sync(self.aresume(workflow_id, value, wait_id))

    def reissue_token(self, workflow_id: str, wait_id: int) -> TokenInfo:
        """Sync ``areissue_token``."""
        return run_sync(self.areissue_token(workflow_id, wait_id))

    def resume_with_token(self, token: str, payload: Any = None) -> WorkflowInstance:
        """Sync ``aresume_with_token``."""
        return run_sync(self.aresume_with_token(token, payload))

    def run_due(self, now: datetime | None = None, *, limit: int = 100) -> int:
        """Sync ``arun_due``."""
        return run_sync(self.arun_due(now, limit=limit))

    def worker(
        self, poll_interval: float = 1.0, stop_event: threading.Event | None = None, *, limit: int = 100
    ) -> None:
        """Sync ``aworker``."""
        run_sync(self.aworker(poll_interval, stop_event, limit=limit))

    def recover(self, workflow_id: str) -> WorkflowInstance:
        """Sync ``arecover``."""
        return run_sync(self.arecover(workflow_id))

    def retry(
        self, workflow_id: str, *, version: str | None = None, metadata: dict[str, str] | None = None
    ) -> WorkflowInstance:
        """Sync ``aretry``."""
        return run_sync(self.aretry(workflow_id, version=version, metadata=metadata))

    def upgrade(self, workflow_id: str, new_hash: str) -> WorkflowInstance:
        """Sync ``aupgrade``."""
        return run_sync(self.aupgrade(workflow_id, new_hash))

    def replay_check(
        self,
        script_source: str,
        workflow_ids: list[str] | None = None,
        *,
        script_name: str | None = None,
        include_finished: bool = False,
    ) -> list[ReplayReport]:
        """Sync ``areplay_check``."""
        return run_sync(
            self.areplay_check(
                script_source, workflow_ids, script_name=script_name, include_finished=include_finished
            )
        )

    def list_page(
        self,
        *,
        status: str | list[str] | None = None,
        script: str | None = None,
        waiting_on: str | list[str] | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        search: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> InstancePage:
        """Sync ``alist_page``."""
        return run_sync(
            self.alist_page(
                status=status,
                script=script,
                waiting_on=waiting_on,
                created_after=created_after,
                created_before=created_before,
                search=search,
                limit=limit,
                cursor=cursor,
            )
        )

    def history_page(self, workflow_id: str, *, limit: int = 100, cursor: str | None = None) -> HistoryPage:
        """Sync ``ahistory_page``."""
        return run_sync(self.ahistory_page(workflow_id, limit=limit, cursor=cursor))

    def count_by_status(self) -> dict[str, int]:
        """Sync ``acount_by_status``."""
        return run_sync(self.acount_by_status())

    def purge(self, workflow_ids: list[str]) -> list[str]:
        """Sync ``apurge``."""
        return run_sync(self.apurge(workflow_ids))

    def fork(
        self, workflow_id: str, *, step: int | None = None, new_id: str | None = None
    ) -> WorkflowInstance:
        """Sync ``afork``."""
        return run_sync(self.afork(workflow_id, step=step, new_id=new_id))
