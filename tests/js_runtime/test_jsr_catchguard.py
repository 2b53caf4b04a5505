"""The catch guard's rewrite on a tree-sitter parse tree (js_runtime._catchguard)."""

from __future__ import annotations

import pytest

from js_runtime import JSError, Sandbox, StackLimitExceeded, _catchguard, parse_javascript


@pytest.mark.parametrize(
    "source",
    [
        "try { a(); } catch ({ message = ')',\n  code }) {\n  b(message, code);\n}\nc();",
        "try { a(); } catch\n{ b(); }\nc();",
        "try { a(); }\nfinally { b(); }\nc();",
    ],
)
def test_rewrite_keeps_every_line_where_it_was(source: str) -> None:
    guarded = _catchguard.guard_catches(source)
    assert guarded != source and _catchguard.GUARD in guarded
    assert guarded.count("\n") == source.count("\n")
    assert guarded.splitlines()[-1] == source.splitlines()[-1]
    assert not parse_javascript(guarded).root_node.has_error


def test_text_that_only_looks_like_a_catch_is_left_alone() -> None:
    source = "const s = 'try {} catch (e) {}'; // catch (e) {\nconst t = `${'}'} finally {}`; /catch (e) {/;"
    assert _catchguard.guard_catches(source) == source


def test_html_like_comments_are_comments(sb: Sandbox) -> None:
    sb.run_script("globalThis.__value = 1 <!-- 2; try {} catch (e) {}\n--> ignored text\n;")
    assert sb.call("get") == 1  # the rest of each line was a comment


def test_a_syntax_error_is_quickjs_s_own(sb: Sandbox) -> None:
    with pytest.raises(JSError) as info:
        sb.run_script("try { x( } catch (e) {}\n")
    assert info.value.name == "SyntaxError" and "cannot parse" not in info.value.message


def test_source_the_parser_cannot_read_but_quickjs_would_run_is_refused(
    sb: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No such syntax is known today; simulate a grammar that lags QuickJS.
    real = _catchguard.parse_javascript
    monkeypatch.setattr(_catchguard, "parse_javascript", lambda data: real(b"(" + data))
    with pytest.raises(JSError) as info:
        sb.run_script("try { f(); } catch (e) { }\n")
    assert info.value.name == "SyntaxError" and "cannot parse" in info.value.message


def test_the_guard_itself_cannot_swallow_an_overflow(sb: Sandbox) -> None:
    with pytest.raises(StackLimitExceeded):
        sb.run_script("function d(n) { try { return d(n + 1); } catch (e) { return 'swallowed'; } } d(0);")


def test_in_a_module_html_like_comments_are_operators(sb: Sandbox) -> None:
    # `x <!--y` is `x < !(--y)` in a module: what follows on the line is code.
    source = (
        "let x = 1, y = 2; x <!--y; const f = () => f(); try { f(); } catch (e) { }\nexport const main = 1;"
    )
    with pytest.raises(StackLimitExceeded):
        sb.run_module(source, ["main"])
