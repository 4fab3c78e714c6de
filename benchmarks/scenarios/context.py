"""What every scenario builds on: the harness's ``Context`` (work folder, engines, interpreters) and how
each engine's command line is made."""

from __future__ import annotations

import dataclasses
import shutil
import typing as t
from pathlib import Path

from benchmarks.measurement import Command

#: the benchmarks folder, and the checkout it belongs to
HERE = Path(__file__).resolve().parents[1]
ROOT = HERE.parent


@dataclasses.dataclass
class Context:
    work: Path
    size: str
    engines: list[str]
    stepengine_python: Path
    prefect_python: Path | None
    base_env: dict[str, str]
    #: ``--stepengine-python`` was given: use that interpreter everywhere (no ``.bench`` venvs)
    stepengine_given: bool = False

    @property
    def tiny(self) -> bool:
        return self.size == "tiny"

    def fresh_dir(self, name: str) -> Path:
        path = self.work / name
        if path.exists():
            shutil.rmtree(path)
        path.mkdir(parents=True)
        return path

    def stepengine_program(
        self, python: Path | None = None, *, script: bool = False, env: dict[str, str] | None = None
    ) -> list[str]:
        """How to start the CLI: the venv's ``stepengine`` script if it has stepengine installed (the
        benchmark venvs, or ``script=True``), else ``python -c`` (the pip scenario's fresh venvs)."""
        python = python or self.stepengine_python
        path = python.parent / "stepengine"
        if (
            path.exists()
            and (script or python == self.stepengine_python)
            and not (env or {}).get("PYTHONPATH")
        ):
            return [str(path)]
        return [
            str(python),
            "-c",
            "import sys; from stepengine.cli import main; sys.argv[0] = 'stepengine'; main()",
        ]

    def stepengine(
        self,
        yaml_file: Path,
        section: str,
        cwd: Path,
        home: Path,
        *,
        python: Path | None = None,
        env: dict[str, str] | None = None,
        script: bool = False,
    ) -> Command:
        argv = [
            *self.stepengine_program(python, script=script, env=env),
            "run",
            str(yaml_file),
            "--section",
            section,
            "-q",
        ]
        return Command(argv, cwd, {**self.base_env, "STEPENGINE_HOME": str(home), **(env or {})})

    def prefect(
        self,
        yaml_file: Path,
        section: str,
        cwd: Path,
        *,
        python: Path | None = None,
        env: dict[str, str] | None = None,
    ) -> Command:
        assert self.prefect_python is not None
        home = self.work / "prefect-home"
        home.mkdir(exist_ok=True)
        argv = [str(python or self.prefect_python), str(HERE / "prefect_runner.py"), str(yaml_file), section]
        prefect_env = {
            "PREFECT_HOME": str(home),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            # a dead port: steps without blocks/variables never need the API, and Prefect does not
            # spend seconds starting a temporary server
            "PREFECT_API_URL": "http://127.0.0.1:9/api",
        }
        return Command(argv, cwd, {**self.base_env, **prefect_env, **(env or {})})

    def pair(
        self, make_stepengine: t.Callable[[], Command], make_prefect: t.Callable[[], Command]
    ) -> dict[str, t.Callable[[], Command]]:
        out: dict[str, t.Callable[[], Command]] = {}
        if "stepengine" in self.engines:
            out["stepengine"] = make_stepengine
        if "prefect" in self.engines and self.prefect_python:
            out["prefect"] = make_prefect
        return out


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path
