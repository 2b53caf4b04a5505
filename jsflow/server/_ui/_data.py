"""The data behind every page, as plain dicts: rendered by the templates and
served unchanged as JSON (``?format=json``), Datasette-style.

Why one builder per page: the HTML and the JSON can never disagree, and the
tests can check the data without parsing markup.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from jsflow.host import (
    WAITING_ON,
    HistoryPage,
    InstancePage,
    WaitInfo,
    WorkflowHost,
    WorkflowInstance,
    wait_category,
)
from jsflow.host.store import InstanceStatus

from .._render import instance_out
from ._render import remaining
from ._why import excerpts, wait_sentence

STATUSES = tuple(s.value for s in InstanceStatus)
LIST_LIMIT = 50
MAX_LIST_LIMIT = 500
HISTORY_LIMIT = 100


@dataclass(frozen=True)
class ListFilters:
    """The list page's query: every field optional."""

    status: str | None = None
    script: str | None = None
    waiting_on: str | None = None
    search: str | None = None
    cursor: str | None = None
    limit: int = LIST_LIMIT

    def query(self) -> dict[str, str | None]:
        """The filters as query parameters (what every link on the page keeps)."""
        limit = None if self.limit == LIST_LIMIT else str(self.limit)
        return {
            "status": self.status,
            "script": self.script,
            "waiting_on": self.waiting_on,
            "q": self.search,
            "limit": limit,
        }


def next_due(inst: WorkflowInstance) -> datetime | None:
    dues = [w.resume_at for w in inst.waits if w.resume_at is not None]
    return min(dues) if dues else None


def summary(inst: WorkflowInstance, now: datetime) -> dict[str, Any]:
    """One row of the list."""
    due = next_due(inst)
    return {
        "workflow_id": inst.workflow_id,
        "status": inst.status,
        "script": inst.script_name,
        "version": inst.script_hash,
        "created_at": inst.created_at,
        "updated_at": inst.updated_at,
        "waiting_on": sorted({wait_category(w.kind) for w in inst.waits}),
        "wait_names": [_wait_label(w) for w in inst.waits],
        "next_due": due,
        "remaining": remaining(due, now),
        "sentence": wait_sentence(inst, now),
    }


def _wait_label(wait: WaitInfo) -> str:
    if wait.event_names:
        return ", ".join(wait.event_names)
    if wait.kind in ("sleep", "retry"):
        return wait.function_name
    return "createHook" if wait.kind == "hook" else wait.function_name


def list_data(host: WorkflowHost, filters: ListFilters, page: InstancePage, now: datetime) -> dict[str, Any]:
    return {
        "now": now,
        "filters": filters.query(),
        "items": [summary(inst, now) for inst in page.items],
        "next_cursor": page.next_cursor,
        "counts": host.count_by_status(),
        "scripts": sorted({s.name for s in host.list_scripts()}),
        "statuses": list(STATUSES),
        "waiting_on_kinds": list(WAITING_ON),
    }


def wait_data(wait: WaitInfo, url: str | None, now: datetime) -> dict[str, Any]:
    return {
        "wait_id": wait.wait_id,
        "kind": wait.kind,
        "category": wait_category(wait.kind),
        "function_name": wait.function_name,
        "names": list(wait.event_names or ()),
        "label": _wait_label(wait),
        "resume_at": wait.resume_at,
        "remaining": remaining(wait.resume_at, now),
        "has_token": wait.has_token,
        "url": url,
        "arguments": wait.arguments,
        "resumable": wait.kind in ("suspend", "token", "hook"),
        "description": wait.description,
        "location": wait.location,
        "schema": wait.schema,
        "schema_json": json.dumps(wait.schema) if wait.schema is not None else "",
    }


def inbox_data(host: WorkflowHost, workflow_id: str) -> list[dict[str, Any]]:
    """Events stored but not delivered yet (buffered until the script waits for them)."""
    return [
        {
            "event_id": e.event_id,
            "name": e.name,
            "received_at": e.received_at,
            "payload": json.loads(e.payload_json),
        }
        for e in host.pending_events(workflow_id)
    ]


def history_data(page: HistoryPage, cursor: str | None) -> dict[str, Any]:
    return {
        "cursor": cursor,
        "next_cursor": page.next_cursor,
        "items": [
            {"at": item.at, "source": item.source, "kind": item.kind, "detail": item.detail}
            for item in page.items
        ],
    }


def instance_data(host: WorkflowHost, inst: WorkflowInstance, now: datetime) -> dict[str, Any]:
    """Everything the instance page shows except the timeline: the API's
    instance JSON (arguments, hook URLs) plus what the page adds (time
    remaining, wait categories, buffered event payloads)."""
    api = instance_out(host, inst)
    urls = {w.wait_id: w.url for w in api.waits}
    return {
        **summary(inst, now),
        "entry_point": inst.entry_point,
        "args": api.args,
        "value": inst.value,
        "error": inst.error,
        "cancel_reason": inst.cancel_reason,
        "metadata": inst.metadata,
        "finished": inst.is_finished,
        "waits": [wait_data(w, urls.get(w.wait_id), now) for w in inst.waits],
        "inbox": inbox_data(host, inst.workflow_id),
        "excerpts": excerpts(host, inst),
        "parent_id": api.parent_id,
        "children": api.children,
    }


def without_credentials(data: dict[str, Any]) -> dict[str, Any]:
    """The instance page's data as a key without the admin scope sees it: no
    hook URL (its last segment is a live token)."""
    return {**data, "waits": [{**w, "url": None} for w in data.get("waits", [])]}


def scripts_data(host: WorkflowHost, *, scan_limit: int = 5000) -> dict[str, Any]:
    """Every script version, newest first per name, with the instances running on it.

    Instances are found by paging the newest ``scan_limit`` ones (``truncated``
    says when there were more), so the page stays fast on a large store.
    """
    on_version: dict[tuple[str, str], list[dict[str, str]]] = {}
    cursor: str | None = None
    scanned = 0
    while scanned < scan_limit:
        page = host.list_page(limit=min(1000, scan_limit - scanned), cursor=cursor)
        scanned += len(page.items)
        for inst in page.items:
            on_version.setdefault((inst.script_name, inst.script_hash), []).append(
                {"workflow_id": inst.workflow_id, "status": inst.status}
            )
        cursor = page.next_cursor
        if cursor is None:
            break
    by_name: dict[str, list[dict[str, Any]]] = {}
    for script in sorted(host.list_scripts(), key=lambda s: (s.name, s.created_at), reverse=True):
        by_name.setdefault(script.name, []).append(
            {
                "hash": script.hash,
                "created_at": script.created_at,
                "source": script.source,
                "instances": on_version.get((script.name, script.hash), []),
            }
        )
    return {
        "scripts": [{"name": n, "versions": by_name[n]} for n in sorted(by_name)],
        "truncated": cursor is not None,
        "scanned": scanned,
    }
