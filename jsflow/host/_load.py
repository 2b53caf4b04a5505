"""Reading an instance for an advance, and the stored form of its state.

Stored form: the ``workflows.state`` column holds a header (the engine state
with only its *inline* journal prefix) and the ``journal`` table holds the
rest, one row per entry, ``seq`` = the entry's index. New instances keep no
entries inline; an instance stored before journal rows existed keeps its old
journal inline (never rewritten) and continues in rows. So a step completion
costs one row, not a rewrite of the state.

Two ways to read, so that a delivery costs the same at any journal length:
``load_header`` reads what changes between advances (the row with its
version and header, the waits, the requirements) and never the journal; a
warm run (``_warm``) needs nothing more. ``full_state`` reads the journal,
once, only when a run has to be opened cold, and checks in the same snapshot
that the instance has not moved since its header was read. ``load`` reads
everything in one snapshot, for callers that know they need the journal.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import TypeAdapter, ValidationError

from jsflow import JournalEntry, WorkflowError, WorkflowState

from ._context import HostContext
from ._errors import CorruptStateError, UnknownScriptError, UnknownWorkflowError
from ._input import check_workflow_id
from .store import ConcurrencyError, PendingWait, StoreSession, WorkflowRecord

_ENTRIES = TypeAdapter(list[JournalEntry])


@dataclass
class Loaded:
    """An instance as an advance sees it, read in one snapshot.

    ``state`` (the header plus every journal entry) is None until someone
    needs it: a warm run does not. ``incarnation`` is the run id in the
    header: new at every start, so a purged and re-created instance never
    matches a warm run of the old one."""

    record: WorkflowRecord
    waits: list[PendingWait]
    requirements: list[str]
    incarnation: str
    inline: int = 0  # journal entries stored in the header (older stores)
    script: str = ""
    state: WorkflowState | None = None
    header: WorkflowState | None = field(default=None, repr=False)

    def wait(self, wait_id: int | None) -> PendingWait | None:
        return next((w for w in self.waits if w.wait_id == wait_id), None)

    @property
    def workflow_id(self) -> str:
        return self.record.workflow_id


def fresh(
    record: WorkflowRecord, state: WorkflowState, requirements: list[str], script: str, inline: int = 0
) -> Loaded:
    """A snapshot of what the caller just stored itself (start, retry, continue-as-new)."""
    return Loaded(record, [], requirements, state.run_id, inline, script, state)


def read_header(tx: StoreSession, workflow_id: str) -> Loaded:
    """The instance without its journal rows, from an open session (one
    statement where the store can: ``get_workflow_header``)."""
    check_workflow_id(workflow_id)
    found = tx.get_workflow_header(workflow_id)
    if found is None:
        raise UnknownWorkflowError(workflow_id)
    return header_loaded(*found)


def header_loaded(record: WorkflowRecord, waits: list[PendingWait], requirements: list[str]) -> Loaded:
    """A ``Loaded`` (without the journal) from what ``get_workflow_header`` read."""
    header = decode_header(record)
    return Loaded(record, waits, requirements, header.run_id, inline=len(header.journal), header=header)


def read_instance(ctx: HostContext, tx: StoreSession, workflow_id: str) -> Loaded:
    """The instance, its waits, journal and requirements, from an open session."""
    loaded = read_header(tx, workflow_id)
    assert loaded.header is not None
    rows = tx.read_journal(workflow_id, loaded.inline)
    loaded.state = compose(ctx, loaded.record, loaded.header, rows)
    return loaded


def load(ctx: HostContext, workflow_id: str) -> Loaded:
    """Everything, journal included, in one snapshot (and the script source)."""
    with ctx.store.transaction(write=False) as tx:
        loaded = read_instance(ctx, tx, workflow_id)
    loaded.script = script_source(ctx, loaded.record)
    return loaded


def load_header(ctx: HostContext, workflow_id: str) -> Loaded:
    """Everything but the journal, in one snapshot (and the script source)."""
    loaded = ctx.store.read(lambda tx: read_header(tx, workflow_id))
    loaded.script = script_source(ctx, loaded.record)
    return loaded


def full_state(ctx: HostContext, loaded: Loaded) -> WorkflowState:
    """The engine state of ``loaded``, reading the journal once if it was not read.

    ``ConcurrencyError`` if the instance moved since ``loaded`` was read (the
    driver then starts the turn again from a fresh read)."""
    if loaded.state is not None:
        return loaded.state
    wid = loaded.workflow_id
    with ctx.store.transaction(write=False) as tx:
        current = tx.get_workflow(wid)
        if current is None:
            raise UnknownWorkflowError(wid)
        if current.version != loaded.record.version:
            raise ConcurrencyError(wid, loaded.record.version, current.version)
        rows = tx.read_journal(wid, loaded.inline)
    header = loaded.header if loaded.header is not None else decode_header(loaded.record)
    loaded.state = compose(ctx, loaded.record, header, rows)
    return loaded.state


def load_record(ctx: HostContext, workflow_id: str) -> tuple[WorkflowRecord, list[PendingWait]]:
    check_workflow_id(workflow_id)
    found = ctx.store.read(lambda tx: tx.get_workflow_header(workflow_id))
    if found is None:
        raise UnknownWorkflowError(workflow_id)
    return found[0], found[1]


def decode_header(record: WorkflowRecord) -> WorkflowState:
    if record.state is None:
        raise CorruptStateError(record.workflow_id, "no state stored")
    try:
        return WorkflowState.deserialize(record.state)
    except WorkflowError as exc:
        raise CorruptStateError(record.workflow_id, str(exc)) from exc


def compose(
    ctx: HostContext, record: WorkflowRecord, header: WorkflowState, rows: list[str]
) -> WorkflowState:
    """The engine's state: header + journal rows, createHook tokens derived again."""
    journal = header.journal
    if rows:
        try:
            journal = journal + _ENTRIES.validate_json("[" + ",".join(rows) + "]")
        except (ValidationError, ValueError) as exc:
            raise CorruptStateError(record.workflow_id, f"a journal row is malformed: {exc}"[:500]) from exc
    journal = ctx.hooks.inflate(record.workflow_id, journal)
    if journal is header.journal:
        return header
    return header.model_copy(update={"journal": journal})


def header_text(ctx: HostContext, state: WorkflowState, inline: int) -> str:
    """The header to store: the state with only its inline journal prefix."""
    prefix = ctx.hooks.strip(list(state.journal[:inline])) if inline else []
    return state.model_copy(update={"journal": prefix}).serialize()


def script_source(ctx: HostContext, record: WorkflowRecord) -> str:
    """The source of the record's script version. Versions are content-addressed
    and never change, so they are cached (name + hash -> source)."""
    key = (record.script_name, record.script_hash)
    source = ctx.script_cache.get(key)
    if source is None:
        script = ctx.store.read(lambda tx: tx.get_script(record.script_name, record.script_hash))
        if script is None:
            raise UnknownScriptError(record.script_name, record.script_hash)
        source = script.source
        ctx.remember_script(record.script_name, record.script_hash, source)
    return source
