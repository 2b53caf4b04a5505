"""No host objects reach the guest."""

from __future__ import annotations

import pytest

from js_runtime import JSError, Sandbox

ABSENT = [
    "require", "process", "std", "os", "fetch", "XMLHttpRequest", "module", "exports",
    "Deno", "Bun", "scriptArgs", "print", "setTimeout", "setInterval", "WebSocket",
    "importScripts", "__jsr_boot", "__jsr_module_exports",
]  # fmt: skip


@pytest.mark.parametrize("name", ABSENT)
def test_global_absent(sb: Sandbox, name: str) -> None:
    sb.run_script(f"globalThis.__value = typeof {name};")
    assert sb.call("get") == "undefined"


def test_dynamic_import_rejects(sb: Sandbox) -> None:
    for spec in ["x", "os", "std", "/etc/passwd", "./_bridge.js"]:
        sb.run_script(
            f"globalThis.__value = 'pending'; import({spec!r}).then("
            "() => { globalThis.__value = 'loaded'; },"
            " (e) => { globalThis.__value = 'rejected: ' + e; });"
        )
        sb.drain()
        assert sb.call("get").startswith("rejected"), spec


@pytest.mark.parametrize("spec", ["os", "std", "/etc/passwd", "./x.js", "node:fs"])
def test_static_import_fails_clearly(sb: Sandbox, spec: str) -> None:
    with pytest.raises(JSError) as info:
        sb.run_module(f"import x from {spec!r};\nexport function main() {{ return x; }}", ["main"])
    assert spec.lstrip("./") in info.value.message


def test_no_file_access(sb: Sandbox) -> None:
    sb.run_script(
        "const r = [];"
        "for (const f of ['loadFile', 'readFile', 'open', 'load', 'read', 'writeFile']) "
        "  r.push(typeof globalThis[f]);"
        "globalThis.__value = r;"
    )
    assert set(sb.call("get")) == {"undefined"}


def test_code_from_strings_is_refused(sb: Sandbox) -> None:
    # eval and the Function constructors would run code the catch guards never saw
    for src in ["Function('return this')", "eval('1')", "(async () => {}).constructor('return 1')",
                "(function* () {}).constructor('yield 1')", "[].map.constructor('return 1')"]:  # fmt: skip
        with pytest.raises(JSError) as info:
            sb.run_script(src)
        assert info.value.name == "EvalError"
