"""The public surface stays small and deliberate, and built-in steps use only the step-author API."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import stepengine
import stepengine.step_api

ROOT = Path(__file__).resolve().parents[1]


def test_top_level_all_is_pinned() -> None:
    assert stepengine.__all__ == sorted(stepengine.__all__)
    public = {name for name in dir(stepengine) if not name.startswith("_")}
    modules = {name for name in public if type(getattr(stepengine, name)).__name__ == "module"}
    assert set(stepengine.__all__) == public - modules


def test_exported_objects_present_as_stepengine() -> None:
    assert repr(stepengine.StepExecutionError).startswith("<class 'stepengine.StepExecutionError'")


def test_step_api_all_is_pinned() -> None:
    assert stepengine.step_api.__all__ == [
        "ProcessError",
        "ProcessResult",
        "StepError",
        "StepInfo",
        "atomic_directory",
        "current_step",
        "emit_output",
        "find_python",
        "get_logger",
        "home_directory",
        "load_block",
        "mask",
        "run_process",
        "safe_join",
        "venv_python",
    ]


def test_builtin_steps_import_only_the_step_api() -> None:
    """builtin_steps is a step package like any other: no reaching into engine internals."""
    offenders = []
    for path in sorted((ROOT / "builtin_steps").rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level > 1:
                # the folder ships as stepengine.builtin_steps: `from .. import x` would reach the engine
                offenders.append(f"{path.name}:{node.lineno} from {'.' * node.level}{node.module or ''}")
            elif (
                isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "stepengine"
            ):
                if node.module != "stepengine.step_api":
                    offenders.append(f"{path.name}:{node.lineno} from {node.module}")
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.split(".")[0] == "stepengine" and alias.name != "stepengine.step_api":
                        offenders.append(f"{path.name}:{node.lineno} import {alias.name}")
    assert offenders == []


def test_nothing_imports_the_repository_folder_by_its_top_level_name() -> None:
    """The repository's builtin_steps/ folder is the package stepengine.builtin_steps (a symlink in
    stepengine/, a real folder in the wheel); importing it as top-level ``builtin_steps`` would make a
    second copy of every module (two registries of git checkouts, two loggers) and breaks once installed."""
    assert (ROOT / "stepengine" / "builtin_steps").resolve() == (ROOT / "builtin_steps").resolve()
    offenders = []
    for folder in ("stepengine", "builtin_steps", "tests", "benchmarks", "examples"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            if folder == "stepengine" and "builtin_steps" in path.relative_to(ROOT / folder).parts:
                continue  # the same files, reached through the symlink
            tree = ast.parse(path.read_text(), str(path))
            for node in ast.walk(tree):
                names = (
                    [node.module or ""]
                    if isinstance(node, ast.ImportFrom) and node.level == 0
                    else [a.name for a in node.names]
                    if isinstance(node, ast.Import)
                    else []
                )
                if any(n == "builtin_steps" or n.startswith("builtin_steps.") for n in names):
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []


HEAVY = [
    "yaml",
    "jinja2",
    "jsonschema",
    "click",
    "rich",
    "docker",
    "fsspec",
    "git",
    "httpx",
    "asyncio",
    "sqlite3",
]


def test_import_stepengine_stays_light() -> None:
    code = f"import sys, stepengine; print([m for m in {HEAVY!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_cli_does_not_load_step_libraries() -> None:
    code = (
        "import sys\nfrom stepengine.cli import cli\n"
        f"print([m for m in {HEAVY!r} if m in sys.modules and m not in ('click',)])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_cli_verbs_load_lazily() -> None:
    """`stepengine run` imports its own verb module only; every verb is still reachable."""
    code = (
        "import sys, click\nfrom stepengine.cli import cli, COMMANDS\n"
        "ctx = click.Context(cli)\n"
        "assert cli.get_command(ctx, 'run') is not None\n"
        "print(sorted(m for m in sys.modules if m.startswith('stepengine.cli.') and not m.startswith('stepengine.cli._')))\n"
        "print(all(cli.get_command(ctx, name).name == name for name in COMMANDS))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split("\n")[:2] == ["['stepengine.cli.run']", "True"]


def test_run_and_plan_take_one_run_options_value() -> None:
    """issue 17: `run` and `plan` take what to run as one RunOptions (or its fields as keywords); the
    keyword names a type checker sees (api.RunFields) are exactly RunOptions' fields."""
    import inspect

    from stepengine.plan import plan

    assert stepengine.RunOptions._fields == (
        "sections",
        "deployment",
        "values",
        "resolver",
        "allow_missing",
        "steps",
        "env",
        "install_requires",
        "strict",
        "from_step",
        "only",
    )
    assert list(inspect.signature(stepengine.run).parameters) == [
        "source",
        "options",
        "on_event",
        "outputs",
        "masker",
        "keep_directory",
        "fields",
    ]
    assert list(inspect.signature(plan).parameters) == ["source", "options", "fields"]
    tree = ast.parse((ROOT / "stepengine" / "api.py").read_text())
    (typed,) = [n for n in ast.walk(tree) if isinstance(n, ast.ClassDef) and n.name == "RunFields"]
    names = tuple(
        s.target.id for s in typed.body if isinstance(s, ast.AnnAssign) and isinstance(s.target, ast.Name)
    )
    assert names == stepengine.RunOptions._fields


def test_run_options_as_a_value_or_as_keywords() -> None:
    import pytest

    from stepengine.plan import plan

    config = stepengine.loads(
        "pull:\n  - produce:\n      id: a\n      value: '{{ greeting }}'\n  - produce:\n      id: b\n      value: two\n"
    )
    steps = {"produce": lambda value: {"value": value}}
    by_keywords = stepengine.run(config, sections=["pull"], values={"greeting": "hi"}, steps=steps)
    options = stepengine.RunOptions(sections=["pull"], values={"greeting": "hi"}, steps=steps)
    assert stepengine.run(config, options) == by_keywords
    assert by_keywords["a"] == {"value": "hi"}
    # keywords given with a RunOptions replace its fields
    assert set(stepengine.run(config, options, only="b")) == {"greeting", "b", "value"}
    assert [p.step.id for p in plan(config, options, only="b").steps] == ["b"]
    assert options.replace(only="b") == stepengine.RunOptions(
        sections=["pull"], values={"greeting": "hi"}, steps=steps, only="b"
    )
    with pytest.raises(AttributeError):
        options.only = "b"  # type: ignore[misc]
    assert "hi" not in repr(options)  # values, env and resolver may hold secrets: not in the repr
    with pytest.raises(TypeError, match=r"run\(\)'s second argument is a stepengine.RunOptions"):
        stepengine.run(config, ["pull"])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"plan\(\) got an unexpected keyword argument 'section'"):
        plan(config, section=["pull"])  # type: ignore[call-arg]
