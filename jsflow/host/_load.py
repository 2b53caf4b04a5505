"""Reading an instance for an advance, and the stored form of its state.

Stored form: the ``workflows.state`` column holds a header (the engine state
with only its *inline* journal prefix) and the ``journal`` table holds the
rest, one row per entry, ``seq`` = the entry's index. New instances keep no
entries inline; an instance stored before journal rows existed keeps its old
journal inline (never rewritten) and continues in rows. So a step completion
costs one row, not a rewrite of the state.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pydantic import TypeAdapter, ValidationError

from jsflow import JournalEntry, WorkflowError, WorkflowState

from ._errors import CorruptStateError, UnknownScriptError, UnknownWorkflowError
from ._input import check_workflow_id
from .store import PendingWait, StoreSession, WorkflowRecord

if TYPE_CHECKING:
    from ._host import WorkflowHost

SCRIPT_CACHE_SIZE = 256
_ENTRIES = TypeAdapter(list[JournalEntry])


@dataclass
class Loaded:
    """Everything an advance needs, read in one snapshot."""

    record: WorkflowRecord
    waits: list[PendingWait]
    script: str
    state: WorkflowState
    inline: int = 0  # journal entries stored in the header (older stores)
    requirements: list[str] = field(default_factory=list)

    def wait(self, wait_id: int | None) -> PendingWait | None:
        return next((w for w in self.waits if w.wait_id == wait_id), None)

    @property
    def workflow_id(self) -> str:
        return self.record.workflow_id


def read_instance(host: WorkflowHost, tx: StoreSession, workflow_id: str) -> Loaded:
    """The instance, its waits, journal and requirements, from an open session."""
    check_workflow_id(workflow_id)
    record = tx.get_workflow(workflow_id)
    if record is None:
        raise UnknownWorkflowError(workflow_id)
    header = decode_header(record)
    rows = tx.read_journal(workflow_id, len(header.journal))
    state = compose(host, record, header, rows)
    return Loaded(
        record,
        tx.list_waits(workflow_id),
        "",
        state,
        inline=len(header.journal),
        requirements=tx.get_requirements(workflow_id),
    )


def load(host: WorkflowHost, workflow_id: str) -> Loaded:
    with host.store.transaction(write=False) as tx:
        loaded = read_instance(host, tx, workflow_id)
    loaded.script = script_source(host, loaded.record)
    return loaded


def load_record(host: WorkflowHost, workflow_id: str) -> tuple[WorkflowRecord, list[PendingWait]]:
    check_workflow_id(workflow_id)
    with host.store.transaction(write=False) as tx:
        record = tx.get_workflow(workflow_id)
        if record is None:
            raise UnknownWorkflowError(workflow_id)
        return record, tx.list_waits(workflow_id)


def decode_header(record: WorkflowRecord) -> WorkflowState:
    if record.state is None:
        raise CorruptStateError(record.workflow_id, "no state stored")
    try:
        return WorkflowState.deserialize(record.state)
    except WorkflowError as exc:
        raise CorruptStateError(record.workflow_id, str(exc)) from exc


def compose(
    host: WorkflowHost, record: WorkflowRecord, header: WorkflowState, rows: list[str]
) -> WorkflowState:
    """The engine's state: header + journal rows, createHook tokens derived again."""
    journal = header.journal
    if rows:
        try:
            journal = journal + _ENTRIES.validate_json("[" + ",".join(rows) + "]")
        except (ValidationError, ValueError) as exc:
            raise CorruptStateError(record.workflow_id, f"a journal row is malformed: {exc}"[:500]) from exc
    journal = host.hooks.inflate(record.workflow_id, journal)
    if journal is header.journal:
        return header
    return header.model_copy(update={"journal": journal})


def header_text(host: WorkflowHost, state: WorkflowState, inline: int) -> str:
    """The header to store: the state with only its inline journal prefix."""
    prefix = host.hooks.strip(list(state.journal[:inline])) if inline else []
    return state.model_copy(update={"journal": prefix}).serialize()


def script_source(host: WorkflowHost, record: WorkflowRecord) -> str:
    """The source of the record's script version. Versions are content-addressed
    and never change, so they are cached (name + hash -> source)."""
    key = (record.script_name, record.script_hash)
    source = host.script_cache.get(key)
    if source is None:
        script = host.store.read(lambda tx: tx.get_script(record.script_name, record.script_hash))
        if script is None:
            raise UnknownScriptError(record.script_name, record.script_hash)
        source = script.source
        if len(host.script_cache) >= SCRIPT_CACHE_SIZE:
            host.script_cache.clear()
        host.script_cache[key] = source
    return source
