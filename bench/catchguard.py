"""Cost of guarding catch clauses: tree-sitter parse + rewrite per script, and a cache hit.

Run: .venv/bin/python bench/catchguard.py (from the repository root)."""

import glob
import pathlib
import time

from js_runtime import _catchguard as cg

srcs = [pathlib.Path(f).read_text() for f in sorted(glob.glob("samples/*.js"))]
big = max(srcs, key=len)
print("files", len(srcs), "largest bytes", len(big.encode()))
for label, src in [("largest sample", big), ("all samples joined", "\n".join(srcs))]:
    n = 200
    t = time.perf_counter()
    for _ in range(n):
        cg._transform(src + " ", module=False)
    dt = (time.perf_counter() - t) / n
    cg._cache.clear()
    t = time.perf_counter()
    for _ in range(n):
        cg.guard_catches(src)
    dc = (time.perf_counter() - t) / n
    print(f"{label}: {len(src.encode())} bytes, parse+transform {dt * 1e3:.3f} ms, cached {dc * 1e6:.1f} us")


def _rejections(count: int = 20000) -> float:
    """CPU seconds for a script that leaves ``count`` rejected promises unhandled
    (each one passes the sandbox's rejection tracker)."""
    from js_runtime import Sandbox, SandboxLimits

    sb = Sandbox(SandboxLimits(time=60))
    start = time.process_time()
    sb.run_script(f"for (let i = 0; i < {count}; i++) Promise.reject(new Error('x'));")
    sb.drain()
    spent = time.process_time() - start
    sb.close()
    return spent


print(f"20000 unhandled rejections: {min(_rejections() for _ in range(3)) * 1e3:.0f} ms (tracker included)")
