"""The host's input rules: what it refuses before anything reaches a store.

Why a module at the bottom of the host: every operation module checks ids and
text the same way (``jsflow.workflow_id_problem``/``jsflow.text_problem``, the
one rule that the CLI and the HTTP server quote too), so the same input gets
the same answer on every store: a NUL that PostgreSQL cannot hold is a
``ValueError`` (HTTP 422) everywhere, never a database error.
"""

from __future__ import annotations

from typing import Any

from jsflow import text_problem, workflow_id_problem

from ._errors import InvalidWorkflowIdError


def check_workflow_id(workflow_id: Any) -> None:
    """The one id rule, as ``InvalidWorkflowIdError`` naming the reason."""
    problem = workflow_id_problem(workflow_id)
    if problem is not None:
        raise InvalidWorkflowIdError(workflow_id, problem)


def check_text(text: Any, what: str) -> None:
    """Text stored as text (names, sources, reasons, search terms, keys): no NUL."""
    if isinstance(text, str):
        problem = text_problem(text)
        if problem is not None:
            raise ValueError(f"{what} {problem}")
