"""A test whose optional tool is missing skips with the reason; with ``STEPENGINE_REQUIRE_ALL_TOOLS=1``
(set by ``.ci/run``) every kind of skip is a failure instead (``tests/fixtures/tools.py``)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: one test per way a test gets skipped, and one that runs
SUITE = """
    import pytest
    from tests.fixtures.tools import missing_tool, needs_program

    @pytest.fixture
    def server():
        missing_tool("no-such-server is not installed (install it so)")

    def test_fixture_skips(server):
        pass

    @needs_program("no-such-program-7f3a", "apt-get install no-such-program")
    def test_marked():
        pass

    @pytest.mark.skipif(True, reason="a plain skipif")
    def test_skipif():
        pass

    def test_runs():
        pass
"""
MODULE_SKIP = """
    import pytest
    pytest.importorskip("no_such_module_7f3a")

    def test_never_collected():
        pass
"""


def _pytest(tmp_path: Path, required: str | None) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_suite.py").write_text(textwrap.dedent(SUITE))
    (tmp_path / "test_module_skip.py").write_text(textwrap.dedent(MODULE_SKIP))
    env = {k: v for k, v in os.environ.items() if k != "STEPENGINE_REQUIRE_ALL_TOOLS"}
    if required is not None:
        env["STEPENGINE_REQUIRE_ALL_TOOLS"] = required
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "tests.fixtures.tools",
            "-p",
            "no:cacheprovider",
            "-rA",
            "--continue-on-collection-errors",
            str(tmp_path),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("required", [None, "0"])
def test_a_missing_tool_skips_with_its_reason(tmp_path: Path, required: str | None) -> None:
    done = _pytest(tmp_path, required)
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r"\b1 passed, 4 skipped\b", done.stdout), done.stdout
    assert "no-such-server is not installed (install it so)" in done.stdout
    assert "no-such-program-7f3a is not installed (apt-get install no-such-program)" in done.stdout
    assert "could not import 'no_such_module_7f3a'" in done.stdout


def test_in_ci_every_skip_is_a_failure_that_keeps_the_reason(tmp_path: Path) -> None:
    done = _pytest(tmp_path, "1")
    assert done.returncode == 1, done.stdout + done.stderr
    assert " skipped" not in done.stdout.splitlines()[-1], done.stdout
    # skips happen while collecting or setting up (skipif marks, fixtures): pytest reports errors
    assert re.search(r"\b1 passed, 4 errors\b", done.stdout), done.stdout
    failed = re.findall(r"^(?:FAILED|ERROR) (\S+)", done.stdout, re.MULTILINE)
    assert sorted(failed) == [
        "test_module_skip.py",
        "test_suite.py::test_fixture_skips",
        "test_suite.py::test_marked",
        "test_suite.py::test_skipif",
    ], done.stdout
    for reason in (
        "no-such-server is not installed (install it so)",
        "no-such-program-7f3a is not installed",
        "a plain skipif",
        "no_such_module_7f3a",
    ):
        assert re.search(r"STEPENGINE_REQUIRE_ALL_TOOLS=1 .*" + re.escape(reason), done.stdout), (
            reason,
            done.stdout,
        )


def test_ci_sets_the_variable() -> None:
    assert "export STEPENGINE_REQUIRE_ALL_TOOLS=1" in (ROOT / ".ci" / "run").read_text()
