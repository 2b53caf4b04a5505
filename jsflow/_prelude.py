"""The JS prelude, read once at import from ``jsflow/runtime/*.js``.

``steps.js`` (JS steps and fetch) is concatenated after ``prelude.js`` so both
run in one installer function and share its closure. Compiling JS is the
largest fixed cost of a call here (~40 ns a byte on the quickjs-ng wheel), so
``steps.js`` is only included when a run can use it: fetch is enabled, or the
sources mention ``step``. The choice depends only on the script text and the
engine's configuration, so it is the same on every replay.
"""

import re
from importlib import resources

_RUNTIME = resources.files("jsflow").joinpath("runtime")
PRELUDE_CORE: str = (
    _RUNTIME.joinpath("prelude.js").read_text("utf-8")
    + "\n"
    + _RUNTIME.joinpath("lifecycle.js").read_text("utf-8")
)
PRELUDE: str = PRELUDE_CORE + "\n" + _RUNTIME.joinpath("steps.js").read_text("utf-8")
_MENTIONS_STEP = re.compile(r"\bstep\b")


def prelude_for(sources: list[str], fetch: bool) -> str:
    """The prelude a run needs: the full one when JS steps or fetch may be used."""
    if fetch or any(_MENTIONS_STEP.search(src) for src in sources):
        return PRELUDE
    return PRELUDE_CORE
