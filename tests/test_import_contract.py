"""The stage order of design.md, as import-linter contracts in pyproject.toml, holds for the code."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_module_imports_only_the_stages_to_its_left() -> None:
    # The venv's lint-imports, not one on PATH; --no-cache so a run never reads or writes .import_linter_cache.
    lint_imports = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run(
        [str(lint_imports), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout
