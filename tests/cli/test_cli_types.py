"""``jsflow types``: the declarations type-check a script written against them
with TypeScript 5, and an unknown option, a wrong argument type or a misused
result is a type error. TypeScript comes from the npm registry into
``.cache/ts`` (installed once); without npm the test is skipped, except in
CI, where it must run."""

from __future__ import annotations

import os
import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TS_DIR = ROOT / ".cache" / "ts"
TSC = TS_DIR / "node_modules" / "typescript" / "bin" / "tsc"

APP = """
from pydantic import BaseModel
from jsflow import WorkflowEngine


class Order(BaseModel):
    id: str
    amount: int
    rush: bool = False


class Decision(BaseModel):
    approved: bool
    by: str


engine = WorkflowEngine()


@engine.step()
def price(order: Order, discount: float = 0.0) -> int:
    return order.amount


@engine.step()
def notify(who: str, message: str) -> None:
    return None


def untyped(a, b):
    return a


engine.register_step_function("untyped", untyped)
engine.register_suspend_function("getApproval", lambda role, order_id: None, schema=Decision)
"""

GOOD = """
/** @param {string} order */
async function main(order) {
  const cost = await price({ id: 'A-17', amount: 3 }, 0.5);
  const doubled = cost * 2;
  const decision = await getApproval('manager', 'A-17');
  if (!decision.approved) return { ok: false, by: decision.by };
  const votes = await waitForEvents('vote', { count: 2, distinct: 'voter', timeout: '1d', default: [] });
  const picked = await waitForEvent('approval', { match: { order: 'A-17' }, timeout: '1h', default: null });
  const either = await waitForEvent(['yes', 'no']);
  const hook = await createHook({ timeout: '2h', schema: { type: 'object' } });
  const body = await hook.wait();
  await sleep('5m');
  await notify('ops', hook.url + either.name);
  const x = await untyped(1, 'two');
  return { order, doubled, votes, picked, body, x };
}
"""

BAD = {
    "unknown option": "async function main() { await waitForEvent('x', { timout: '1h' }); }",
    "wrong argument type": "async function main() { await price({ id: 'A', amount: 'lots' }); }",
    "misused result": "async function main() { const n = await price({ id: 'A', amount: 1 }); n.trim(); }",
    "count is required": "async function main() { await waitForEvents('vote', { distinct: 'voter' }); }",
    "wrong suspend result": "async function main() { const d = await getApproval('m', 'A'); d.ok.trim(); }",
}


def _tsc() -> Path:
    if TSC.exists():
        return TSC
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        if os.environ.get("CI"):
            pytest.fail("npm and node are needed for the TypeScript check in CI")
        pytest.skip("npm is not installed: cannot fetch typescript")
    TS_DIR.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [npm, "install", "--prefix", str(TS_DIR), "--no-audit", "--no-fund", "typescript@5"],
        check=True,
        capture_output=True,
        timeout=600,
    )
    return TSC


def _check(tsc: Path, folder: Path, script: str) -> subprocess.CompletedProcess[str]:
    (folder / "flow.js").write_text(textwrap.dedent(script))
    args = ["--noEmit", "--strict", "--checkJs", "--allowJs", "--skipLibCheck", "--lib", "es2022"]
    return subprocess.run(
        ["node", str(tsc), *args, "jsflow.d.ts", "flow.js"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture
def declared(jsflow, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "typed_app.py").write_text(APP)
    monkeypatch.syspath_prepend(str(tmp_path))
    out = tmp_path / "jsflow.d.ts"
    jsflow("types", "--app", "typed_app:engine", "--suspend", "extraWait", "-o", str(out))
    return tmp_path


def test_declarations_cover_builtins_and_registered_functions(declared: Path) -> None:
    text = (declared / "jsflow.d.ts").read_text()
    for needle in (
        "declare function waitForEvents<",
        "declare function createHook<",
        "distinct?: string",
        'declare function price(order: { "id": string; "amount": number; "rush"?: boolean }, '
        "discount?: number): Promise<number>;",
        "declare function untyped(a: any, b: any): Promise<any>;",
        "declare function extraWait(...args: any[]): Promise<any>;",
        "declare function getApproval(role: any, order_id: any): "
        'Promise<{ "approved": boolean; "by": string }>;',
    ):
        assert needle in text, needle
    assert "export " not in text  # global declarations for plain scripts


def test_a_hosts_token_suspend_functions_are_declared(jsflow, tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "host_app.py").write_text(
        "from jsflow.host import WorkflowHost\n"
        "host = WorkflowHost('memory://', hook_secret='x')\n"
        "host.register_suspend_function('sign', schema={'type': 'object', 'properties': "
        "{'ok': {'type': 'boolean'}}, 'required': ['ok']})\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    text = jsflow("types", "--app", "host_app:host").stdout
    assert 'declare function sign(...args: any[]): Promise<{ "ok": boolean }>;' in text


def test_tsc_accepts_a_good_script_and_rejects_mistakes(declared: Path) -> None:
    tsc = _tsc()
    good = _check(tsc, declared, GOOD)
    assert good.returncode == 0, good.stdout + good.stderr
    for what, script in BAD.items():
        bad = _check(tsc, declared, script)
        assert bad.returncode != 0 and "error TS" in bad.stdout, what
