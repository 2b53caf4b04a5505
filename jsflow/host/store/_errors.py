"""Errors raised by the jsflow store.

Why a separate hierarchy: the host must tell "somebody else advanced this
instance first" (retry with fresh state) from "that token was already used"
(answer the caller with a clear 409) from "the database is broken" (stop).
Every backend raises the same classes, and driver errors (``sqlite3.Error``,
later psycopg's) are translated into them at one boundary in the SQL store,
with the original exception chained as ``__cause__``. Each class carries its
facts as attributes, not only in the message.

::

    StoreError                          base of everything the store raises
    ├── StoreUnavailableError           transient: the database was unreachable or busy (retried first)
    ├── StoreClosedError                the store (or a finished transaction) was used after close
    ├── BackendNotAvailableError        URL names a backend not built yet (also NotImplementedError)
    ├── SchemaVersionError              database schema newer than this code understands
    ├── CorruptRecordError              a stored row cannot be decoded
    ├── UnknownWorkflowError            no instance with that workflow id
    ├── UnknownScriptError              no script version with that name (and hash)
    ├── ConcurrencyError                optimistic version check failed
    │   └── TransactionConflictError    the database aborted a transaction (deadlock, serialization)
    ├── InboxError                      event unknown or already delivered
    ├── IdempotencyKeyConflictError     an idempotency key reused for another event name or payload
    └── TokenError                      resume-token problems
        ├── TokenNotFoundError          no token with that hash
        ├── TokenUsedError              token already consumed (single use)
        └── TokenExpiredError           token past its expiry
"""

from __future__ import annotations

from datetime import datetime


class StoreError(Exception):
    """Base class of every error the store raises."""


class StoreUnavailableError(StoreError):
    """The database could not be reached or did not answer in time: a connection was
    lost, the server is restarting, the pool had no free connection, a lock wait
    timed out. Transient: the store retried with backoff for ``retried_for``
    seconds before raising. Whether a write that was in flight committed is
    unknown, so callers abandon the unit of work (a workflow is never faulted for
    this) and let recovery read the store again later. ``backend`` names the
    database kind; the message never includes credentials. ``at_commit``: the
    connection failed while committing, so the transaction may have committed
    (such a failure is never retried blindly)."""

    def __init__(self, backend: str, reason: str, *, retried_for: float = 0.0) -> None:
        super().__init__(f"{backend} store unavailable: {reason}")
        self.backend = backend
        self.reason = reason
        self.retried_for = retried_for
        self.at_commit = False


class StoreClosedError(StoreError):
    """The store was closed, or a transaction object was used after it ended."""


class BackendNotAvailableError(StoreError, NotImplementedError):
    """The store URL names a backend that this version of jsflow does not provide."""

    def __init__(self, scheme: str, message: str) -> None:
        super().__init__(message)
        self.scheme = scheme


class SchemaVersionError(StoreError):
    """The database was written by a newer jsflow (schema ``found`` > ``supported``)."""

    def __init__(self, found: int, supported: int) -> None:
        super().__init__(
            f"database schema version {found} is newer than this jsflow supports "
            f"({supported}); upgrade jsflow to open it"
        )
        self.found = found
        self.supported = supported


class CorruptRecordError(StoreError):
    """A stored row could not be decoded (bad JSON, unknown status, wrong type)."""

    def __init__(self, table: str, key: object, reason: str) -> None:
        super().__init__(f"corrupt record in {table} (key {key!r}): {reason}")
        self.table = table
        self.key = key
        self.reason = reason


class UnknownWorkflowError(StoreError, LookupError):
    """No workflow instance has this id."""

    def __init__(self, workflow_id: str) -> None:
        super().__init__(f"unknown workflow {workflow_id!r}")
        self.workflow_id = workflow_id


class UnknownScriptError(StoreError, LookupError):
    """No stored script version matches ``name`` (and ``hash`` when given)."""

    def __init__(self, name: str, hash: str | None = None) -> None:
        what = f"{name!r}" if hash is None else f"{name!r} version {hash[:12]}"
        super().__init__(f"unknown script {what}")
        self.name = name
        self.hash = hash


class ConcurrencyError(StoreError):
    """Another writer saved the instance first: the stored version is not the expected one."""

    def __init__(self, workflow_id: str, expected: int, actual: int) -> None:
        super().__init__(
            f"workflow {workflow_id!r} was modified concurrently: "
            f"expected version {expected}, stored version is {actual}"
        )
        self.workflow_id = workflow_id
        self.expected = expected
        self.actual = actual


class TransactionConflictError(ConcurrencyError):
    """The database aborted the transaction to resolve a conflict with another one
    (deadlock, serialization failure): nothing was written; run it again.

    A ``ConcurrencyError`` so that the host's retry of lost races covers it.
    ``sqlstate`` is the database's code (``40P01``, ``40001``); ``workflow_id``
    is empty and ``expected``/``actual`` are -1: no version check failed.
    """

    def __init__(self, sqlstate: str, detail: str) -> None:
        StoreError.__init__(self, f"transaction aborted by a conflict ({sqlstate}): {detail}; retry it")
        self.sqlstate = sqlstate
        self.workflow_id = ""
        self.expected = -1
        self.actual = -1


class InboxError(StoreError):
    """An inbox event cannot be marked delivered (``reason``: "unknown" or "delivered")."""

    def __init__(self, event_id: int, reason: str) -> None:
        text = "does not exist" if reason == "unknown" else "was already delivered"
        super().__init__(f"inbox event {event_id} {text}")
        self.event_id = event_id
        self.reason = reason


class IdempotencyKeyConflictError(StoreError):
    """The idempotency key was first used for another request: a different event
    name or payload. Nothing was stored. ``event_id`` is the first request's event."""

    def __init__(self, workflow_id: str, idempotency_key: str, event_id: int) -> None:
        super().__init__(
            f"idempotency key {idempotency_key!r} of workflow {workflow_id!r} was already used "
            f"for another event name or payload (event {event_id}); use a new key for a new request"
        )
        self.workflow_id = workflow_id
        self.idempotency_key = idempotency_key
        self.event_id = event_id


class TokenError(StoreError):
    """Base class of resume-token errors; ``token_hash`` is the hash, never the token."""

    def __init__(self, token_hash: str, message: str) -> None:
        super().__init__(message)
        self.token_hash = token_hash


class TokenNotFoundError(TokenError, LookupError):
    """No token with this hash was ever issued."""

    def __init__(self, token_hash: str) -> None:
        super().__init__(token_hash, "unknown resume token")


class TokenUsedError(TokenError):
    """The token was already consumed: the wait it belongs to was already resumed."""

    def __init__(self, token_hash: str, workflow_id: str, wait_id: int, used_at: datetime) -> None:
        super().__init__(
            token_hash,
            f"resume token already used at {used_at.isoformat()} (workflow {workflow_id!r}, wait {wait_id})",
        )
        self.workflow_id = workflow_id
        self.wait_id = wait_id
        self.used_at = used_at


class TokenExpiredError(TokenError):
    """The token's ``expires_at`` has passed."""

    def __init__(self, token_hash: str, workflow_id: str, wait_id: int, expires_at: datetime) -> None:
        super().__init__(
            token_hash,
            f"resume token expired at {expires_at.isoformat()} (workflow {workflow_id!r}, wait {wait_id})",
        )
        self.workflow_id = workflow_id
        self.wait_id = wait_id
        self.expires_at = expires_at
