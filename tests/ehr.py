"""The test EHR the chart tests talk to: two real processes on loopback, started and stopped by running_ehr.

fhirsnake (a real FHIR R4 server, in its own venv, .venv-fhir) holds the record; tests/ehr_server.py is the front
door: SMART App Launch 2 on Authlib's OAuth 2 server and a bearer-protected proxy to fhirsnake. A test starts a
launch with Ehr.launch, sends the browser to Ehr.launch_url, and reads what was written with Ehr.resources,
straight from fhirsnake (no token).

The record is tests/ehr_seed/<Type>/<id>.json, copied for each run. Every person and fact in it is FICTIONAL,
made up for these tests, and each resource is tagged HTEST (HL7's "test health data"):

- Patient rosa: Rosa Quillabamba, prefers Spanish (es). An active problem F11.20 + SNOMED 5602001 (counts); a resolved
  overdose T40.2X1A (must not count); an active buprenorphine order (RxNorm 1819, and 1010600 the film); Encounter
  visit-1.
- Patient sam: Sam Sample, English. A resolved F11.20 (must not count) and an active asthma J45.909; Encounter
  visit-2. fhirsnake ignores search parameters, so a search for one patient's conditions answers both patients'.
- Practitioner counselor-1: Jordan Placeholder, the signed-in user.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlencode

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent
SEED = Path(__file__).resolve().parent / "ehr_seed"
SERVER = Path(__file__).resolve().parent / "ehr_server.py"
FHIR_VENV = ROOT / ".venv-fhir"
REQUIRE_ENV = "HANDOUTS_REQUIRE_EHR"
TIMEOUT = httpx.Timeout(10.0)
# Both processes start in about a second; a slow CI machine gets a good margin before the run counts as broken.
READY_SECONDS = 30.0
STOP_SECONDS = 5.0


@dataclass(frozen=True)
class Ehr:
    """A running test EHR: its FHIR base (iss) and fhirsnake's own address, and the tests' controls."""

    iss: str  # http://127.0.0.1:P/fhir
    fhir_direct: str  # fhirsnake's own URL, for reading what was written without a token

    @property
    def origin(self) -> str:
        """Return the EHR's root URL, where its control endpoints are."""
        return self.iss.removesuffix("/fhir")

    def launch(self, patient: str = "rosa", encounter: str = "visit-1", user: str = "Practitioner/counselor-1") -> str:
        """Open a patient's chart in the EHR and return the launch id an EHR launch sends the app."""
        answer = httpx.post(
            f"{self.origin}/_test/launch",
            json={"patient": patient, "encounter": encounter, "user": user},
            timeout=TIMEOUT,
        )
        answer.raise_for_status()
        return str(answer.json()["launch"])

    def launch_url(self, app_launch: str, launch: str) -> str:
        """Return the URL the EHR opens for an EHR launch: the app's launch URL with iss and launch."""
        joiner = "&" if "?" in app_launch else "?"
        return f"{app_launch}{joiner}{urlencode({'iss': self.iss, 'launch': launch})}"

    def resources(self, resource_type: str) -> list[dict[str, Any]]:
        """Return every resource of a type as fhirsnake holds it (written through the EHR or seeded)."""
        answer = httpx.get(f"{self.fhir_direct}/{resource_type}", timeout=TIMEOUT)
        answer.raise_for_status()
        return [entry["resource"] for entry in answer.json().get("entry") or []]

    def drop_next(self, method: str, resource_type: str) -> None:
        """Have the EHR forward the next such request to fhirsnake, then reset the connection without answering."""
        answer = httpx.post(
            f"{self.origin}/_test/drop-next", json={"method": method, "type": resource_type}, timeout=TIMEOUT
        )
        answer.raise_for_status()

    def requests(self) -> list[dict[str, Any]]:
        """Return the FHIR requests the EHR's proxy saw, oldest first (method, path, query, status, headers)."""
        answer = httpx.get(f"{self.origin}/_test/requests", timeout=TIMEOUT)
        answer.raise_for_status()
        seen: list[dict[str, Any]] = answer.json()
        return seen


def fhirsnake_package() -> Path | None:
    """Return fhirsnake's folder in .venv-fhir (it imports its modules by bare name), or None."""
    found = sorted(FHIR_VENV.glob("lib/python*/site-packages/fhirsnake/main.py"))
    return found[0].parent if found else None


def fhirsnake_python() -> Path | None:
    """Return .venv-fhir's python when fhirsnake is installed there, else None."""
    python = FHIR_VENV / "bin" / "python"
    return python if python.exists() and fhirsnake_package() is not None else None


def need_fhirsnake() -> None:
    """Skip the test when fhirsnake is not installed; fail instead when HANDOUTS_REQUIRE_EHR=1 (CI)."""
    if fhirsnake_python() is not None:
        return
    message = f"fhirsnake is not installed in {FHIR_VENV} (README: python3 -m venv .venv-fhir && ...)"
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{message}; {REQUIRE_ENV}=1 requires it")
    pytest.skip(message)


def free_port() -> int:
    """Return a loopback port free at this moment."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def running_ehr(tmp: Path, client_id: str, redirect_uri: str) -> Iterator[Ehr]:
    """Start fhirsnake on a copy of the seed and the EHR's front door before it, wait until both answer, stop both."""
    need_fhirsnake()
    python, package = fhirsnake_python(), fhirsnake_package()
    assert python is not None and package is not None
    # fhirsnake reads ./resources of its working directory at start and keeps everything in memory after.
    tmp.mkdir(parents=True, exist_ok=True)
    home = tmp / "fhirsnake"
    shutil.copytree(SEED, home / "resources")
    fhir_port, ehr_port = free_port(), free_port()
    fhir = f"http://127.0.0.1:{fhir_port}"
    ehr = Ehr(iss=f"http://127.0.0.1:{ehr_port}/fhir", fhir_direct=fhir)
    with ExitStack() as stack:
        fhir_log = stack.enter_context((tmp / "fhirsnake.log").open("wb"))
        ehr_log = stack.enter_context((tmp / "ehr_server.log").open("wb"))
        fhir_command = [str(python), "-m", "uvicorn", "main:app", "--host", "127.0.0.1", "--port", str(fhir_port)]
        # --no-access-log: uvicorn's access log would print query strings (patient ids).
        fhir_process = start(stack, [*fhir_command, "--no-access-log"], home, fhir_log, PYTHONPATH=str(package))
        ehr_command = [sys.executable, str(SERVER), "--port", str(ehr_port), "--fhir", fhir, "--client-id", client_id]
        ehr_command += ["--redirect-uri", redirect_uri, "--seed-dir", str(home / "resources")]
        ehr_process = start(stack, ehr_command, tmp, ehr_log)
        wait_until_ready(fhir_process, f"{fhir}/Patient/rosa", tmp / "fhirsnake.log")
        wait_until_ready(ehr_process, f"{ehr.iss}/.well-known/smart-configuration", tmp / "ehr_server.log")
        yield ehr


def start(stack: ExitStack, command: list[str], cwd: Path, log: IO[bytes], **env: str) -> subprocess.Popen[bytes]:
    """Start a process with its output in a log file, to be stopped when the stack closes."""
    process = subprocess.Popen(
        command, cwd=cwd, env={**os.environ, **env}, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
    )
    stack.callback(stop, process)
    return process


def stop(process: subprocess.Popen[bytes]) -> None:
    """Terminate a process, and kill it if it does not end in a few seconds."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=STOP_SECONDS)


def wait_until_ready(process: subprocess.Popen[bytes], url: str, log: Path) -> None:
    """Wait until a URL answers 200, failing at once if the process ends and after READY_SECONDS if it never does."""
    deadline = time.monotonic() + READY_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{log.stem} ended with {process.returncode}:\n{tail(log)}")
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{url} did not answer within {READY_SECONDS} s:\n{tail(log)}")


def tail(log: Path, lines: int = 20) -> str:
    """Return the last lines of a log file."""
    return "\n".join(log.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
