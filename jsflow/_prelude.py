"""The JS prelude, read once at import from ``jsflow/runtime/*.js``.

``steps.js`` (JS steps and fetch) is concatenated after ``prelude.js`` so both
run in one installer function and share its closure.
"""

from importlib import resources

_RUNTIME = resources.files("jsflow").joinpath("runtime")
PRELUDE: str = "\n".join(_RUNTIME.joinpath(name).read_text("utf-8") for name in ("prelude.js", "steps.js"))
