"""Drive `handouts serve` with 1 and with 4 clients making tailored 2-section handouts; compare with a warm render.

    python bench/serve.py [REQUESTS_PER_CLIENT]

Starts the server on a copy of the project (2 warm workers), then reports, from this one run:
median and p95 latency of one handout (POST the form, then GET its PDF), throughput, and the
ratio of the 1-client median to a warm in-process render of the same handout.
"""

from __future__ import annotations

import concurrent.futures as cf
import datetime as dt
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

FORM = {
    "language": "en",
    "brand": "example-clinic",
    "layout": "letter",
    "sections": ["mat", "overdose-safety"],
    "prepared_for": "Alex",
    "counselor": "Jamie",
    "note": "Bring your pill bottle.",
    "next_visit": "2026-12-03",
    "next_visit_time": "14:30",
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start(root: Path, port: int) -> subprocess.Popen[str]:
    command = [sys.executable, str(ROOT / "generate.py"), "--root", str(root), "serve", "--port", str(port)]
    command += ["--workers", "2"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)  # noqa: S603
    assert process.stdout is not None
    process.stdout.readline()
    for _ in range(300):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return process
        except OSError:
            time.sleep(0.1)
    raise SystemExit("the server did not start")


def client_run(url: str, count: int) -> list[float]:
    """Make `count` handouts one after another in one browser session; return each one's seconds."""
    times = []
    with httpx.Client(base_url=url, timeout=300) as client:
        csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/").text)
        assert csrf
        for _ in range(count):
            started = time.perf_counter()
            page = client.post("/handout", data={**FORM, "csrf": csrf[1]})
            link = re.search(r'href="(/pdf/[^"]+)"', page.text)
            assert page.status_code == 200 and link, page.text[:300]
            pdf = client.get(link[1])
            assert pdf.content.startswith(b"%PDF")
            times.append(time.perf_counter() - started)
    return times


def clients(url: str, how_many: int, count: int) -> tuple[list[float], float]:
    started = time.perf_counter()
    with cf.ThreadPoolExecutor(how_many) as pool:
        runs = list(pool.map(lambda _: client_run(url, count), range(how_many)))
    return [t for run in runs for t in run], time.perf_counter() - started


def warm_render(root: Path, count: int) -> list[float]:
    """Render the same handout in this process with warm tools, as a long-running process would."""
    from handouts.build import prepare
    from handouts.compose import HandoutSpec
    from handouts.inputs.settings import load_project
    from handouts.models import Tailoring
    from handouts.render_service import render_handout

    project, _ = load_project(root)
    tailoring = Tailoring("Alex", "Jamie", "Bring your pill bottle.", dt.date(2026, 12, 3), dt.time(14, 30))
    spec = HandoutSpec(("mat", "overdose-safety"), "example-clinic", "en", "letter", tailoring=tailoring)
    handout, assets = prepare(project, spec, dt.date.today())
    render_handout(handout, project, assets)  # warm: fonts, stylesheets, templates
    times = []
    for _ in range(count):
        started = time.perf_counter()
        render_handout(handout, project, assets)
        times.append(time.perf_counter() - started)
    return times


def p95(times: list[float]) -> float:
    return statistics.quantiles(times, n=20)[-1] if len(times) >= 2 else times[0]


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 12
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        for name in ("content", "templates", "styles", "brands"):
            shutil.copytree(ROOT / name, root / name)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        process = start(root, port)
        try:
            clients(url, 2, 2)  # warm both workers
            one, one_wall = clients(url, 1, count)
            four, four_wall = clients(url, 4, count)
        finally:
            process.terminate()
            process.wait(timeout=30)
        warm = warm_render(root, count)
    base = statistics.median(warm)
    rows = [
        ("warm in-process render", base, p95(warm), len(warm) / sum(warm)),
        ("server, 1 client", statistics.median(one), p95(one), len(one) / one_wall),
        ("server, 4 clients", statistics.median(four), p95(four), len(four) / four_wall),
    ]
    print(f"{count} handouts per client; mat + overdose-safety, letter, tailored")
    print(f"{'':26} {'median':>8} {'p95':>8} {'per second':>11}")
    for name, median, tail, rate in rows:
        print(f"{name:26} {median * 1000:6.0f}ms {tail * 1000:6.0f}ms {rate:11.2f}")
    print(f"1-client median / warm render: {statistics.median(one) / base:.2f} (target at most 1.3)")
    print(f"4-client / 1-client throughput: {rows[2][3] / rows[1][3]:.2f} (target at least 1.7)")


if __name__ == "__main__":
    main()
