"""The declared types hold: ``mypy`` (``--strict``, config in pyproject.toml) finds nothing in stepengine/.

CI runs the same check through the pre-commit hook; this test runs it with the suite, so a change that
breaks a type is caught where it is made. Skipped, with the reason, where mypy is not installed (the
``dev`` extra installs it).
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(
    importlib.util.find_spec("mypy") is None, reason="mypy is not installed (pip install -e '.[dev]')"
)
def test_mypy_strict_finds_nothing() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True, text=True, timeout=600, check=False
    )
    assert result.returncode == 0, (
        "mypy --strict (config in pyproject.toml) found type errors; run `mypy` in the checkout:\n"
        + result.stdout
        + result.stderr
    )
    assert result.stdout.startswith("Success: no issues found")
