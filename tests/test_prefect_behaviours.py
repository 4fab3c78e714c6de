"""Prefect's behaviours, by default (issue 13 item 5), each learned from Prefect's own code:

- a step's ``warnings.warn`` is shown (``run_steps`` records every warning, ``DeprecationWarning``
  forced to ``always``, and prints each message);
- each block reference gets its own copy (``resolve_block_document_references`` deep-copies);
- a variable is read once per run (``resolve_variables`` caches by name, a missing one too);
- ``.prefectignore`` lines are stripped (prefect-aws ``push_to_s3``), comments and blanks skipped;
- ``--allow-missing`` renders as ``apply_values`` / ``resolve_variables`` do: a missing environment
  variable or variable is ``""`` (whole value or inside text), a missing output as the whole value
  drops the key, a missing block is still an error.
"""

from __future__ import annotations

import copy
import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pytest

import stepengine
from stepengine.errors import TemplateError
from stepengine.resolvers import InMemoryResolver
from tests.conftest import ROOT


def load(text: str) -> stepengine.Config:
    return stepengine.loads(textwrap.dedent(text), file="prefect.yaml")


# -- warnings ----------------------------------------------------------------------------------


def _warn_twice() -> dict:
    for _ in range(2):  # one place in the code: shown once
        warnings.warn("old_option is deprecated; use new_option", DeprecationWarning, stacklevel=1)
    warnings.warn("the cache is cold", UserWarning, stacklevel=1)
    return {}


def test_step_warnings_are_events_once_per_place() -> None:
    events: list[stepengine.Event] = []
    config = load("pull:\n  - warn: {}\n  - warn: {}\n")
    stepengine.run(config, steps={"warn": _warn_twice}, on_event=events.append)
    shown = [(e.index, e.message) for e in events if e.kind == "step.warning"]
    assert shown == [(0, "old_option is deprecated; use new_option"), (0, "the cache is cold")]


def test_step_warnings_are_shown_by_the_cli(tmp_path: Path) -> None:
    (tmp_path / "legacy_steps.py").write_text(
        "import warnings\n\ndef legacy():\n"
        "    warnings.warn('legacy is deprecated', DeprecationWarning)\n    return {}\n"
    )
    (tmp_path / "prefect.yaml").write_text("pull:\n  - legacy_steps.legacy: {}\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}
    result = subprocess.run(
        [sys.executable, "-m", "stepengine", "run"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "> Running legacy step...\nlegacy is deprecated\n" in result.stderr + result.stdout


def test_a_failing_step_still_shows_its_warnings() -> None:
    def fails() -> dict:
        warnings.warn("about to fail", UserWarning, stacklevel=2)
        raise RuntimeError("boom")

    events: list[stepengine.Event] = []
    with pytest.raises(stepengine.StepExecutionError):
        stepengine.run(load("pull:\n  - fails: {}\n"), steps={"fails": fails}, on_event=events.append)
    assert [e.message for e in events if e.kind == "step.warning"] == ["about to fail"]


# -- blocks: a copy per reference ------------------------------------------------------------------


def test_each_block_reference_gets_its_own_copy() -> None:
    seen: list[dict] = []

    def mutate(settings: dict, again: dict) -> dict:
        seen.append(copy.deepcopy({"settings": settings, "again": again}))
        assert settings is not again
        settings["replicas"] = 99
        settings["tags"].append("changed")
        return {}

    config = load(
        """\
        pull:
          - mutate:
              settings: "{{ prefect.blocks.json.cfg }}"
              again: "{{ prefect.blocks.json.cfg }}"
          - mutate:
              settings: "{{ prefect.blocks.json.cfg }}"
              again: "{{ prefect.blocks.json.cfg }}"
        """
    )
    resolver = InMemoryResolver(blocks={"json/cfg": {"value": {"replicas": 2, "tags": ["a"]}}})
    stepengine.run(config, steps={"mutate": mutate}, resolver=resolver)
    assert seen[1] == {"settings": {"replicas": 2, "tags": ["a"]}, "again": {"replicas": 2, "tags": ["a"]}}
    assert resolver.get_block("json", "cfg") == {"value": {"replicas": 2, "tags": ["a"]}}


def test_a_path_into_a_one_field_block_starts_inside_its_value() -> None:
    config = load(
        "pull:\n  - echo:\n      n: '{{ prefect.blocks.json.cfg.replicas }}'\n"
        "      whole: '{{ prefect.blocks.json.cfg.value }}'\n"
    )
    resolver = InMemoryResolver(blocks={"json/cfg": {"value": {"replicas": 2}}})
    outputs = stepengine.run(config, steps={"echo": lambda **kw: kw}, resolver=resolver)
    assert (outputs["n"], outputs["whole"]) == (2, {"replicas": 2})


# -- variables: one read per name per run ----------------------------------------------------------


class CountingResolver(InMemoryResolver):
    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.reads: list[str] = []

    def get_variable(self, name: str) -> object:
        self.reads.append(name)
        return super().get_variable(name)


def test_each_variable_is_read_once_per_run() -> None:
    config = load(
        """\
        pull:
          - echo:
              a: "{{ prefect.variables.branch }}"
              b: "on {{ prefect.variables.branch }}"
              c: "{{ prefect.variables.nope }}"
          - echo:
              a: "{{ prefect.variables.branch }}"
              c: "x{{ prefect.variables.nope }}"
        """
    )
    resolver = CountingResolver(variables={"branch": "main"})
    outputs = stepengine.run(config, steps={"echo": lambda **kw: kw}, resolver=resolver, allow_missing=True)
    assert sorted(resolver.reads) == ["branch", "nope"]
    assert outputs == {"a": "main", "b": "on main", "c": "x"}
    # a second run reads again (the cache is the run's, not the process's)
    stepengine.run(config, steps={"echo": lambda **kw: kw}, resolver=resolver, allow_missing=True)
    assert sorted(resolver.reads) == ["branch", "branch", "nope", "nope"]


# -- --allow-missing renders as Prefect does -------------------------------------------------------


def test_allow_missing_env_and_variables_render_as_empty_text() -> None:
    config = load(
        """\
        pull:
          - echo:
              env_whole: "{{ $STEPENGINE_TEST_UNSET }}"
              env_text: "a-{{ $STEPENGINE_TEST_UNSET }}-b"
              var_whole: "{{ prefect.variables.missing }}"
              var_text: "a-{{ prefect.variables.missing }}-b"
              out_whole: "{{ nothing.here }}"
              out_text: "a-{{ nothing }}-b"
              in_list: ["{{ nothing }}", "{{ $STEPENGINE_TEST_UNSET }}", "{{ prefect.variables.missing }}"]
        """
    )
    outputs = stepengine.run(
        config, steps={"echo": lambda **kw: kw}, resolver=InMemoryResolver(), allow_missing=True, env={}
    )
    assert outputs == {
        "env_whole": "",
        "env_text": "a--b",
        "var_whole": "",
        "var_text": "a--b",
        # out_whole: dropped, as Prefect's apply_values drops a whole-value placeholder it cannot fill
        "out_text": "a--b",
        "in_list": ["", ""],
    }


def test_allow_missing_variable_without_any_store_is_empty_too() -> None:
    config = load("pull:\n  - echo:\n      v: '{{ prefect.variables.missing }}'\n")
    outputs = stepengine.run(
        config,
        steps={"echo": lambda **kw: kw},
        resolver=None,
        allow_missing=True,
        env={"STEPENGINE_STORES": "values"},
    )
    assert outputs == {"v": ""}


def test_allow_missing_keeps_a_missing_block_an_error() -> None:
    """Prefect raises for a block it cannot read (ObjectNotFound) or a path it cannot follow."""
    for text in ("{{ prefect.blocks.secret.nope }}", "x {{ prefect.blocks.json.cfg.no_such_field }}"):
        config = load(f"pull:\n  - echo:\n      v: '{text}'\n")
        with pytest.raises(TemplateError):
            stepengine.run(
                config,
                steps={"echo": lambda **kw: kw},
                allow_missing=True,
                resolver=InMemoryResolver(blocks={"json/cfg": {"a": 1}}),
            )


# -- .prefectignore, parsed as Prefect parses it ---------------------------------------------------


def test_prefectignore_lines_are_stripped_as_prefect_aws_does(tmp_path: Path) -> None:
    pytest.importorskip("fsspec")
    from stepengine.builtin_steps.blob import push_to_blob_storage

    project = tmp_path / "project"
    files = {
        "flow.py": "x",
        "debug.log": "x",
        "notes.tmp": "x",
        "secret.env": "x",
        "build/out.bin": "x",
        "build/keep.txt": "x",
        " # not a comment.txt": "x",
    }
    for rel, text in files.items():
        (project / rel).parent.mkdir(parents=True, exist_ok=True)
        (project / rel).write_text(text)
    (project / ".prefectignore").write_text(
        "  *.log  \n\t*.tmp\r\n   # a comment with leading blanks\n\n   \nsecret.env\t\nbuild/\n  !build/keep.txt\n"
    )
    target = tmp_path / "bucket"
    push_to_blob_storage(f"file://{target}", directory=str(project))
    pushed = sorted(p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file())
    # a negation re-includes a file of an ignored folder, as Prefect's PathSpec ("gitwildmatch") does
    assert pushed == [" # not a comment.txt", ".prefectignore", "build/keep.txt", "flow.py"]
