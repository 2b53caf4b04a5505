"""Queries (issue 20): ``WorkflowHost.query`` answers a script's ``defineQuery``
handler from the instance's current state without journaling anything.

Why a fresh replay and not the warm run: a handler may change the script's
variables (nothing stops ``() => counter++``), and a warm run is the state
the next delivery continues from; a replay in a sandbox of its own is thrown
away after answering. A finished instance answers from its final state (its
whole journal replayed). No step runs (replay only delivers the journal) and
the handler runs under the engine's time budget.
"""

from __future__ import annotations

from typing import Any

import jsflow

from ._context import HostContext
from ._errors import QueryError, QueryNotFoundError
from ._load import load


def query(ctx: HostContext, workflow_id: str, name: str, args: list[Any]) -> Any:
    """The handler's answer (JSON), or ``QueryError``/``QueryNotFoundError``."""
    loaded = load(ctx, workflow_id)
    try:
        return ctx.engine.query(loaded.script, loaded.state, name, *args, extensions=ctx.extensions)
    except jsflow.QueryNotFoundError as exc:
        raise QueryNotFoundError(workflow_id, name, exc.defined) from exc
    except jsflow.QueryError as exc:
        raise QueryError(workflow_id, name, exc.error) from exc


def list_queries(ctx: HostContext, workflow_id: str) -> list[str]:
    """The names of the queries the instance's script has defined so far."""
    loaded = load(ctx, workflow_id)
    return ctx.engine.list_queries(loaded.script, loaded.state, extensions=ctx.extensions)
