"""``jsflow token``: a fresh resume token for a pending token wait (the old one dies)."""

from __future__ import annotations

import click

from jsflow.host import WaitKind

from . import _render as out
from ._errors import CliError
from ._options import db_option, id_argument, json_option, registration_options
from ._session import Registrations, open_existing
from ._store import HostSettings, host_options
from ._text import safe


@click.command("token")
@id_argument
@click.option("--wait-id", type=int, help="The token wait to reissue (default: the only pending one).")
@registration_options
@host_options
@db_option
@json_option
def token_cmd(
    workflow_id: str,
    wait_id: int | None,
    regs: Registrations,
    settings: HostSettings,
    db: str | None,
    as_json: bool,
) -> None:
    """Issue a fresh resume token for workflow ID's pending token wait and print it.

    The old token stops working; the expiry stays the wait's. Use it when a
    token was lost (its message never arrived, the process that suspended died
    before handing it out). Only waits of Python token suspend functions
    (``--suspend``, or an ``--app`` host's) have tokens to reissue.

    Example:

    \b
        jsflow token approve-1
        jsflow token approve-1 --wait-id 2 --json
    """
    with open_existing(db, regs, settings) as sess:
        inst = sess.host.get(workflow_id)
        sess.prepare(inst)
        if wait_id is None:
            tokens = [w.wait_id for w in inst.waits if w.kind == WaitKind.TOKEN]
            if len(tokens) != 1:
                pending = ", ".join(f"{w.wait_id} ({w.kind} {w.function_name})" for w in inst.waits) or "none"
                raise CliError(
                    f"workflow {safe(repr(workflow_id))} has {len(tokens)} pending token waits; "
                    f"pass --wait-id (pending waits: {safe(pending)})"
                )
            wait_id = tokens[0]
        info = sess.host.reissue_token(workflow_id, wait_id)
    if as_json:
        out.emit_json(
            {
                "workflow_id": workflow_id,
                "wait_id": info.wait_id,
                "function_name": info.function_name,
                "token": info.token,
                "url": info.url,
                "expires_at": info.expires_at,
            }
        )
        return
    click.echo(info.token)
    expiry = out.when(info.expires_at) if info.expires_at is not None else "never"
    click.echo(
        f"wait {info.wait_id} ({safe(info.function_name)}); the old token no longer works; expires {expiry}",
        err=True,
    )
