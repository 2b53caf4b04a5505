"""Command-line values that nest too deeply are a usage error (exit 2), not an
internal RecursionError."""

from __future__ import annotations

from pathlib import Path

from cli_helpers import Invoke


def test_deeply_nested_argument_is_a_usage_error(jsflow: Invoke, tmp_path: Path) -> None:
    script = tmp_path / "deep.js"
    script.write_text("function main(a) { return 1; }")
    deep = "[" * 100_000 + "]" * 100_000
    for arg in (deep, "@" + str(tmp_path / "deep.json")):
        (tmp_path / "deep.json").write_text(deep)
        res = jsflow("run", str(script), arg, ok=False)
        assert res.exit_code == 2, res.output
        assert "nests too deeply" in res.output
        assert "RecursionError" not in res.output
