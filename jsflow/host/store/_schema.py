"""Schema of the SQL stores, as ordered migrations.

Why migrations and not "CREATE TABLE IF NOT EXISTS": instances live for
months, so a database outlives many jsflow releases. Migration N is the list
entry at index N - 1; ``schema_version`` records every applied one. Opening a
database applies only the missing ones, in one transaction (DDL is
transactional in SQLite and PostgreSQL), and refuses a database whose
version is newer than the code. Never edit a released migration: append one.

The scripts are generic SQL; the few type spellings that differ between
dialects are ``str.format`` fields filled from ``SQLStore.ddl_types``:
``{id_pk}`` (auto-increment integer primary key), ``{bigint}``, and
``{json_items}`` (a FROM item giving the elements of the JSON text array
``w.event_names`` as a ``j.value`` column; used once, to fill a new table).
Statements are separated by ``;`` and must not contain one themselves.
Timestamps are integer milliseconds since the epoch, UTC.
"""

from __future__ import annotations

MIGRATIONS: tuple[str, ...] = (
    # 1: core tables
    """
    CREATE TABLE scripts (
        name TEXT NOT NULL,
        hash TEXT NOT NULL,
        source TEXT NOT NULL,
        created_at {bigint} NOT NULL,
        registered_seq {bigint} NOT NULL,
        PRIMARY KEY (name, hash)
    );
    CREATE TABLE workflows (
        workflow_id TEXT NOT NULL PRIMARY KEY,
        script_name TEXT NOT NULL,
        script_hash TEXT NOT NULL,
        entry_point TEXT NOT NULL,
        status TEXT NOT NULL,
        state TEXT,
        result_json TEXT,
        error_json TEXT,
        created_at {bigint} NOT NULL,
        updated_at {bigint} NOT NULL,
        version {bigint} NOT NULL,
        cancel_reason TEXT,
        metadata TEXT NOT NULL,
        FOREIGN KEY (script_name, script_hash) REFERENCES scripts (name, hash)
    );
    CREATE TABLE history (
        workflow_id TEXT NOT NULL REFERENCES workflows (workflow_id) ON DELETE CASCADE,
        seq {bigint} NOT NULL,
        at {bigint} NOT NULL,
        kind TEXT NOT NULL,
        detail TEXT NOT NULL,
        PRIMARY KEY (workflow_id, seq)
    );
    CREATE TABLE waits (
        workflow_id TEXT NOT NULL REFERENCES workflows (workflow_id) ON DELETE CASCADE,
        wait_id {bigint} NOT NULL,
        function_name TEXT NOT NULL,
        kind TEXT NOT NULL,
        resume_at {bigint},
        event_names TEXT,
        is_retry INTEGER NOT NULL,
        token_hash TEXT,
        arguments_json TEXT NOT NULL,
        claimed_by TEXT,
        claim_expires_at {bigint},
        PRIMARY KEY (workflow_id, wait_id)
    );
    CREATE TABLE inbox (
        event_id {id_pk},
        workflow_id TEXT NOT NULL REFERENCES workflows (workflow_id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        payload_json TEXT NOT NULL,
        received_at {bigint} NOT NULL,
        delivered_at {bigint},
        wait_id {bigint}
    );
    CREATE TABLE tokens (
        token_hash TEXT NOT NULL PRIMARY KEY,
        workflow_id TEXT NOT NULL REFERENCES workflows (workflow_id) ON DELETE CASCADE,
        wait_id {bigint} NOT NULL,
        kind TEXT NOT NULL,
        metadata TEXT NOT NULL,
        created_at {bigint} NOT NULL,
        expires_at {bigint},
        used_at {bigint}
    )
    """,
    # 2: indexes for the timer scan, the inbox, listings and latest-script lookup
    """
    CREATE INDEX waits_due ON waits (resume_at) WHERE resume_at IS NOT NULL;
    CREATE INDEX inbox_pending ON inbox (workflow_id, event_id) WHERE delivered_at IS NULL;
    CREATE INDEX workflows_created ON workflows (created_at, workflow_id);
    CREATE INDEX workflows_status ON workflows (status, created_at);
    CREATE INDEX workflows_script ON workflows (script_name, created_at);
    CREATE INDEX scripts_latest ON scripts (name, registered_seq);
    CREATE INDEX tokens_workflow ON tokens (workflow_id)
    """,
    # 3: append-only journal rows (the workflows.state column keeps the small
    # header), what each instance needs registered to run, recovery attempts,
    # idempotency keys for events, and the stale-run scan by last update
    """
    CREATE TABLE journal (
        workflow_id TEXT NOT NULL REFERENCES workflows (workflow_id) ON DELETE CASCADE,
        seq {bigint} NOT NULL,
        entry TEXT NOT NULL,
        PRIMARY KEY (workflow_id, seq)
    );
    CREATE TABLE requirements (
        workflow_id TEXT NOT NULL REFERENCES workflows (workflow_id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        PRIMARY KEY (workflow_id, name)
    );
    CREATE TABLE recoveries (
        workflow_id TEXT NOT NULL PRIMARY KEY REFERENCES workflows (workflow_id) ON DELETE CASCADE,
        attempts {bigint} NOT NULL
    );
    ALTER TABLE inbox ADD COLUMN idempotency_key TEXT;
    CREATE UNIQUE INDEX inbox_idempotency ON inbox (workflow_id, idempotency_key);
    CREATE INDEX workflows_updated ON workflows (status, updated_at)
    """,
    # 4: the event names each wait listens for, one row per name, so sweeps match
    # names by equality (never a text match on JSON); per-store settings (the
    # createHook secret, shared by every process on the store); the request an
    # idempotency key was first used for, so a reuse for another one is refused
    """
    CREATE TABLE wait_event_names (
        workflow_id TEXT NOT NULL,
        wait_id {bigint} NOT NULL,
        name TEXT NOT NULL,
        PRIMARY KEY (workflow_id, wait_id, name),
        FOREIGN KEY (workflow_id, wait_id) REFERENCES waits (workflow_id, wait_id) ON DELETE CASCADE
    );
    CREATE INDEX wait_event_names_name ON wait_event_names (workflow_id, name);
    INSERT INTO wait_event_names (workflow_id, wait_id, name)
        SELECT DISTINCT w.workflow_id, w.wait_id, j.value FROM waits w, {json_items}
        WHERE w.event_names IS NOT NULL;
    CREATE TABLE store_settings (
        name TEXT NOT NULL PRIMARY KEY,
        value TEXT NOT NULL
    );
    ALTER TABLE inbox ADD COLUMN request_digest TEXT
    """,
    # 5: what the engine says about each wait beyond its columns (where it was
    # made, what it waits for in words, match, count and progress, schema)
    """
    ALTER TABLE waits ADD COLUMN detail_json TEXT
    """,
    # 6: cron schedules that start workflows (issue 20) and their history lines
    """
    CREATE TABLE schedules (
        name TEXT NOT NULL PRIMARY KEY,
        cron TEXT NOT NULL,
        script TEXT NOT NULL,
        args_json TEXT NOT NULL,
        timezone TEXT NOT NULL,
        overlap TEXT NOT NULL,
        catch_up TEXT NOT NULL,
        paused INTEGER NOT NULL,
        cursor_ms {bigint} NOT NULL,
        created_at {bigint} NOT NULL,
        updated_at {bigint} NOT NULL,
        last_instance TEXT,
        version {bigint} NOT NULL
    );
    CREATE TABLE schedule_history (
        id {id_pk},
        name TEXT NOT NULL,
        at {bigint} NOT NULL,
        kind TEXT NOT NULL,
        detail TEXT NOT NULL
    );
    CREATE INDEX schedule_history_name ON schedule_history (name, id)
    """,
)

SCHEMA_VERSION_DDL = (
    "CREATE TABLE IF NOT EXISTS schema_version ("
    "version INTEGER NOT NULL PRIMARY KEY, applied_at {bigint} NOT NULL)"
)


def statements(script: str, ddl_types: dict[str, str]) -> list[str]:
    """Split one migration into executable statements for a dialect."""
    text = script.format(**ddl_types)
    return [part.strip() for part in text.split(";") if part.strip()]
