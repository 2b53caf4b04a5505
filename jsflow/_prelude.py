"""The JS prelude, read once at import from ``jsflow/runtime/*.js``."""

from importlib import resources

PRELUDE: str = resources.files("jsflow").joinpath("runtime", "prelude.js").read_text("utf-8")
