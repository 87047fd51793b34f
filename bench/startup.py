"""Measure the cold start: `import weasyprint` plain and through handouts' one ldconfig read, each in a fresh process.

Run: python bench/startup.py [runs]. Prints the median of each and their ratio, from one run.
"""

from __future__ import annotations

import statistics
import subprocess
import sys

PLAIN = "import time; t = time.perf_counter(); import weasyprint; print(time.perf_counter() - t)"
OURS = (
    "import time; t = time.perf_counter(); from handouts.output.pdf import load_weasyprint; "
    "load_weasyprint(); print(time.perf_counter() - t)"
)


def timed(code: str, runs: int) -> float:
    """Return the median seconds an import takes in a fresh interpreter."""
    return statistics.median(
        float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)  # noqa: S603
        for _ in range(runs)
    )


def main() -> None:
    """Print the two medians and the ratio."""
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 7
    plain, ours = timed(PLAIN, runs), timed(OURS, runs)
    print(f"import weasyprint, plain:             {plain * 1000:6.0f} ms (median of {runs})")
    print(f"import through load_weasyprint():     {ours * 1000:6.0f} ms")
    print(f"ratio ours / plain:                   {ours / plain:6.2f}")


if __name__ == "__main__":
    main()
