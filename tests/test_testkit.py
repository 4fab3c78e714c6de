"""``testkit/`` (the real servers tests and benchmarks share) is a declared package of the repository:
importable from the root without pytest, used by the benchmarks instead of ``tests``, never in the wheel."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODULES = sorted(p.stem for p in (ROOT / "testkit").glob("*.py") if p.stem != "__init__")


def test_testkit_imports_without_pytest() -> None:
    """Benchmarks and scripts run without pytest: no testkit module may import it."""
    code = (
        "import sys; sys.modules['pytest'] = None\n"
        f"import importlib; [importlib.import_module('testkit.' + m) for m in {MODULES!r}]\n"
        "print('ok')"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr
    assert {"git_server", "moto_server", "prefect_server", "docker_engine", "processes"} <= set(MODULES)


def test_benchmarks_do_not_import_the_tests() -> None:
    offenders = []
    for path in sorted((ROOT / "benchmarks").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = (
                [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else []
            )
            offenders += [f"{path.relative_to(ROOT)}: {n}" for n in names if n.split(".")[0] == "tests"]
    assert offenders == []


def test_the_wheel_ships_no_testkit(tmp_path: Path) -> None:
    """The wheel built from this checkout holds stepengine (the built-in steps inside), not the test servers."""
    env = {**os.environ, "PIP_CONFIG_FILE": os.devnull, "PIP_FIND_LINKS": "", "PIP_NO_INDEX": "1"}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    (wheel,) = tmp_path.glob("stepengine-*.whl")
    tops = {name.split("/")[0] for name in zipfile.ZipFile(wheel).namelist()}
    assert "stepengine" in tops and "builtin_steps" not in tops
    assert not {"testkit", "tests", "benchmarks"} & tops, tops
