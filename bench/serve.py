"""Drive `handouts serve` with 1 and with 4 clients making tailored 2-section handouts; compare with a warm render.

    python bench/serve.py [REQUESTS_PER_CLIENT] [PDFS_FOR_MEMORY]

Starts the server on a copy of the project (2 warm workers), then reports, from this one run:
median and p95 latency of one handout (POST the form, then GET its PDF), throughput, and the
ratio of the 1-client median to a warm in-process render of the same handout. Then the memory of
the server and of its workers after PDFS_FOR_MEMORY tailored PDFs (default 1000), and of a server
with passwords before, during and after 60 sign-ins at once under made-up names.
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
import threading
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
    # A week ahead of whatever day the benchmark runs: the form refuses a visit in the past.
    "next_visit": (dt.date.today() + dt.timedelta(days=7)).isoformat(),
    "next_visit_time": "14:30",
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start(root: Path, port: int, *extra: str) -> subprocess.Popen[str]:
    command = [sys.executable, str(ROOT / "generate.py"), "--root", str(root), "serve", "--port", str(port)]
    command += ["--workers", "2", *extra]
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
    visit = dt.date.fromisoformat(FORM["next_visit"])  # type: ignore[arg-type]
    tailoring = Tailoring("Alex", "Jamie", "Bring your pill bottle.", visit, dt.time(14, 30))
    spec = HandoutSpec(("mat", "overdose-safety"), "example-clinic", "en", "letter", tailoring=tailoring)
    handout, assets = prepare(project, spec, dt.date.today())
    render_handout(handout, project, assets)  # warm: fonts, stylesheets, templates
    times = []
    for _ in range(count):
        started = time.perf_counter()
        render_handout(handout, project, assets)
        times.append(time.perf_counter() - started)
    return times


def rss_mib(pid: int, field: str = "VmRSS") -> float:
    """Return a process's resident memory (or its peak, VmHWM) in MiB, from /proc; 0 for one that ended."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    found = re.search(rf"{field}:\s+(\d+) kB", status)
    return int(found[1]) / 1024 if found else 0.0


def workers_of(pid: int) -> list[int]:
    """Return the render workers: the server's children, less multiprocessing's resource tracker."""
    found = []
    # Every thread's children: the pool starts each worker from a thread of its own (threads and
    # workers come and go while we look).
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            children = (task / "children").read_text().split()
        except OSError:
            continue
        for child in children:
            try:
                if "resource_tracker" not in Path(f"/proc/{child}/cmdline").read_text():
                    found.append(int(child))
            except OSError:
                continue
    return found


def memory_line(label: str, pid: int) -> str:
    workers = workers_of(pid)  # the render workers, then the one that checks changed content
    shown = ", ".join(f"{rss_mib(w):.0f}" for w in workers)
    total = rss_mib(pid) + sum(rss_mib(w) for w in workers)
    return f"{label:34} server {rss_mib(pid):5.0f} MiB, workers {shown} MiB, total {total:5.0f} MiB"


def memory_after_pdfs(root: Path, pdfs: int) -> list[str]:
    """Make `pdfs` tailored PDFs from 4 clients; return the memory before and after."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = start(root, port)
    try:
        clients(url, 2, 1)
        lines = [memory_line("after 2 PDFs (warm)", process.pid)]
        started = time.perf_counter()
        clients(url, 4, pdfs // 4)
        wall = time.perf_counter() - started
        lines.append(memory_line(f"after {pdfs // 4 * 4 + 2} PDFs ({wall:.0f} s)", process.pid))
    finally:
        process.terminate()
        process.wait(timeout=30)
    return lines


def sign_in_flood(root: Path, flood: int = 60) -> list[str]:
    """Start a server with passwords; sign in `flood` times at once under made-up names; return its memory."""
    from handouts.serve.security import add_counselor

    users = root / "counselors"
    add_counselor(users, "dana", "correct horse battery")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = start(root, port, "--auth-file", str(users))
    peak = [0.0]
    done = False

    def watch() -> None:
        while not done:
            pids = [process.pid, *workers_of(process.pid)]
            peak[0] = max(peak[0], sum(rss_mib(p) for p in pids))
            time.sleep(0.01)

    def sign_in(number: int) -> int:
        # Each from an address of its own, so only the bound on hashing holds the flood back.
        transport = httpx.HTTPTransport(local_address=f"127.0.1.{number + 1}")
        with httpx.Client(base_url=url, transport=transport, timeout=120) as browser:
            csrf = re.search(r'name="csrf" value="([^"]+)"', browser.get("/login").text)
            assert csrf
            data = {"csrf": csrf[1], "username": f"made-up-{number}", "password": "guess"}
            return browser.post("/login", data=data).status_code

    try:
        lines = [memory_line("password server, before", process.pid)]
        watcher = threading.Thread(target=watch)
        watcher.start()
        started = time.perf_counter()
        with cf.ThreadPoolExecutor(flood) as pool:
            answers = list(pool.map(sign_in, range(flood)))
        wall = time.perf_counter() - started
        done = True
        watcher.join()
        counted = {status: answers.count(status) for status in sorted(set(answers))}
        lines.append(f"{flood} sign-ins at once: answers {counted} in {wall:.1f} s; peak total {peak[0]:.0f} MiB")
        lines.append(memory_line("password server, after the flood", process.pid))
    finally:
        process.terminate()
        process.wait(timeout=30)
    return lines


def p95(times: list[float]) -> float:
    return statistics.quantiles(times, n=20)[-1] if len(times) >= 2 else times[0]


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 12
    pdfs = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
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
        memory = memory_after_pdfs(root, pdfs) + sign_in_flood(root)
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
    print("\n".join(memory))


if __name__ == "__main__":
    main()
