"""What a cold ``stepengine run`` imports: the speed work of issue 9 kept by a behaviour test.

A worker starts a fresh process per run, so every module imported on that path is paid on every run.
Once a file has been validated and the entry points listed (both cached under ``$STEPENGINE_HOME``),
a run of a 1-step pull must not import the heavy libraries below (benchmarks/RESULTS.md has the
numbers). Timing is never asserted here; only which modules are loaded.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

HEAVY = [
    "yaml",  # ~9 ms: only when a file is new or changed (parsed-document cache)
    "jsonschema",  # ~45 ms: only when a file is new or changed (validity cache)
    "importlib.metadata",  # ~20 ms: only when sys.path changed (entry-point cache)
    "email",  # importlib.metadata's parser
    "jinja2",  # only for templates that need Jinja
    "sqlite3",  # only when a template reads a block or variable from the local store
    "asyncio",  # only for async steps
    "_hashlib",  # OpenSSL: ~6 ms
    "subprocess",  # only when a step starts a process
    "random",  # only when a retry waits
    "rich",
    "httpx",
    "fsspec",
    "docker",
    "click",  # ~10 ms: `run`'s plain command lines are parsed by stepengine.cli._fastpath
    "dataclasses",  # ~7 ms with inspect, ast, dis, tokenize (stepengine.config._Value)
    "inspect",
]

CODE = """\
import json, sys
from stepengine.cli import main
code = main(["run", "prefect.yaml", "--section", "pull", "-q"])
print(json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""


def _run(cwd: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", CODE],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def test_a_repeated_cold_run_imports_no_heavy_library(tmp_path: Path) -> None:
    (tmp_path / "prefect.yaml").write_text(
        "pull:\n  - prefect.deployments.steps.set_working_directory:\n      directory: .\n"
    )
    old = time.time() - 3600  # '' (the cwd) is on sys.path: make it look settled, as a real one is
    os.utime(tmp_path, (old, old))
    # the entry-point listing is not cached while a sys.path directory changed in the last 2 s (an
    # install in progress): another test may just have installed a package
    newest = max((os.stat(p).st_mtime for p in sys.path if p and os.path.isdir(p)), default=0)
    time.sleep(max(0.0, newest + 2.1 - time.time()))
    first = _run(tmp_path)
    assert first["code"] == 0
    assert "jsonschema" in first["modules"]  # the first run validates in full
    assert "yaml" in first["modules"]  # and parses
    second = _run(tmp_path)
    assert second["code"] == 0
    # modules the interpreter itself loads at startup here (site, .pth files) are not ours to avoid
    bare = subprocess.run(
        [sys.executable, "-c", "import sys; print(' '.join(sys.modules))"],
        capture_output=True,
        text=True,
        check=False,
    )
    at_startup = set(bare.stdout.split())
    loaded = [name for name in HEAVY if name in second["modules"] and name not in at_startup]
    assert loaded == []


def test_an_edited_file_is_parsed_and_validated_again(tmp_path: Path) -> None:
    """The caches are keyed by content: an edit is never served from them."""
    path = tmp_path / "prefect.yaml"
    path.write_text("pull:\n  - prefect.deployments.steps.set_working_directory:\n      directory: .\n")
    assert _run(tmp_path)["code"] == 0
    path.write_text("pull:\n  - prefect.deployments.steps.set_working_directory:\n      directory: [.]\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", CODE], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert "'directory' must be a string, got list ['.']" in done.stderr
