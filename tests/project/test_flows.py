"""Flow registration by reading the source: nothing is imported, so missing dependencies do not matter."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from stepengine.errors import ConfigError
from stepengine.project.flows import (
    find_flows,
    flow_at,
    load_registry,
    register_flows,
    registered_entrypoint,
)

SOURCE = '''
import pandas as pd                        # not installed here: never imported by registration
import prefect
from prefect import flow as prefect_flow, task
from typing import Any, Dict, List, Literal, Optional, Tuple, Union
import datetime

@task
def helper(x: int) -> int:
    return x


@prefect_flow(name="Nightly ETL", log_prints=True)
def etl(
    source: str,
    limit: int = 10,
    ratio: float = 0.5,
    dry_run: bool = False,
    columns: List[str] = ["a", "b"],
    table: Optional[str] = None,
    since: "datetime.date | None" = None,
    mode: Literal["full", "delta"] = "delta",
    options: Dict[str, int] = {},
    pair: Tuple[int, str] = (1, "x"),
    anything=None,
    frame=pd.DataFrame(),
    *,
    retries: Union[int, str] = 3,
):
    """Load the warehouse.

    More words."""


@prefect.flow
async def cleanup(days: list[int], when: datetime.datetime):
    pass


def plain(x):
    pass
'''


@pytest.fixture()
def project(tmp_path: Path) -> Path:
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "etl.py").write_text(SOURCE)
    (tmp_path / ".venv" / "lib").mkdir(parents=True)
    (tmp_path / ".venv" / "lib" / "skipped.py").write_text(
        "from prefect import flow\n@flow\ndef hidden(): pass\n"
    )
    return tmp_path


def test_flows_found_without_importing(project: Path) -> None:
    flows = find_flows(project, root=project)
    assert [(f.name, f.entrypoint, f.description) for f in flows] == [
        ("Nightly ETL", "flows/etl.py:etl", "Load the warehouse.\n\nMore words."),
        ("cleanup", "flows/etl.py:cleanup", None),
    ]


def test_parameter_schema_from_the_signature(project: Path) -> None:
    (etl,) = [f for f in find_flows(project / "flows" / "etl.py", root=project) if f.function == "etl"]
    assert etl.parameters == {
        "title": "Parameters",
        "type": "object",
        "properties": {
            "source": {"title": "source", "position": 0, "type": "string"},
            "limit": {"title": "limit", "position": 1, "type": "integer", "default": 10},
            "ratio": {"title": "ratio", "position": 2, "type": "number", "default": 0.5},
            "dry_run": {"title": "dry_run", "position": 3, "type": "boolean", "default": False},
            "columns": {
                "title": "columns",
                "position": 4,
                "type": "array",
                "items": {"type": "string"},
                "default": ["a", "b"],
            },
            "table": {
                "title": "table",
                "position": 5,
                "anyOf": [{"type": "string"}, {"type": "null"}],
                "default": None,
            },
            "since": {
                "title": "since",
                "position": 6,
                "anyOf": [{"type": "string", "format": "date"}, {"type": "null"}],
                "default": None,
            },
            "mode": {
                "title": "mode",
                "position": 7,
                "enum": ["full", "delta"],
                "type": "string",
                "default": "delta",
            },
            "options": {
                "title": "options",
                "position": 8,
                "type": "object",
                "additionalProperties": {"type": "integer"},
                "default": {},
            },
            "pair": {
                "title": "pair",
                "position": 9,
                "type": "array",
                "prefixItems": [{"type": "integer"}, {"type": "string"}],
                "minItems": 2,
                "maxItems": 2,
                "default": [1, "x"],
            },
            "anything": {"title": "anything", "position": 10, "default": None},
            "frame": {"title": "frame", "position": 11},
            "retries": {
                "title": "retries",
                "position": 12,
                "anyOf": [{"type": "integer"}, {"type": "string"}],
                "default": 3,
            },
        },
        "required": ["source"],
    }


def test_async_flow_and_builtin_generics(project: Path) -> None:
    cleanup = flow_at("flows/etl.py:cleanup", root=project)
    assert cleanup.parameters["properties"] == {
        "days": {"title": "days", "position": 0, "type": "array", "items": {"type": "integer"}},
        "when": {"title": "when", "position": 1, "type": "string", "format": "date-time"},
    }
    assert cleanup.parameters["required"] == ["days", "when"]


def test_flow_at_names_missing_functions_and_files(project: Path) -> None:
    with pytest.raises(ConfigError) as info:
        flow_at("flows/etl.py:etll", root=project)
    assert (
        str(info.value)
        == "entrypoint 'flows/etl.py:etll': flows/etl.py defines no function 'etll' (did you mean 'etl'?)"
    )
    with pytest.raises(ConfigError) as info:
        flow_at("flows/nope.py:etl", root=project)
    assert (
        str(info.value)
        == f"entrypoint 'flows/nope.py:etl': flows/nope.py does not exist in {project.resolve()}"
    )
    with pytest.raises(ConfigError) as info:
        flow_at("flows/etl.py", root=project)
    assert str(info.value) == "entrypoint 'flows/etl.py' is not path/to/file.py:function"


def test_syntax_error_is_located(tmp_path: Path) -> None:
    (tmp_path / "bad.py").write_text("from prefect import flow\n@flow\ndef f(:\n")
    with pytest.raises(ConfigError) as info:
        find_flows(tmp_path / "bad.py", root=tmp_path)
    assert str(info.value).startswith(f"{tmp_path / 'bad.py'}:3:")


def test_register_writes_flows_json_and_keeps_other_records(project: Path) -> None:
    (project / ".prefect").mkdir()
    # Prefect 2.10 wrote name → entrypoint; such records are read and kept
    (project / ".prefect" / "flows.json").write_text(json.dumps({"old-flow": "legacy.py:old"}))
    flows = register_flows(project / "flows", root=project)
    assert len(flows) == 2
    registry = load_registry(project)
    assert list(registry) == ["Nightly ETL", "cleanup", "old-flow"]
    assert registry["old-flow"] == {"entrypoint": "legacy.py:old"}
    assert registry["Nightly ETL"]["entrypoint"] == "flows/etl.py:etl"
    assert registry["Nightly ETL"]["parameter_openapi_schema"]["required"] == ["source"]
    assert registered_entrypoint("cleanup", root=project) == "flows/etl.py:cleanup"
    with pytest.raises(ConfigError) as info:
        registered_entrypoint("cleanp", root=project)
    assert str(info.value) == (
        "no registered flow named 'cleanp' (did you mean 'cleanup'?)\n"
        "hint: register flows with `stepengine flows register PATH`; registered: Nightly ETL, cleanup, old-flow"
    )


def test_default_name_follows_prefect(tmp_path: Path) -> None:
    (tmp_path / "f.py").write_text(
        textwrap.dedent('''
        from prefect import flow
        @flow(description="given")
        def my_daily_flow(): """doc"""
    ''')
    )
    (flow,) = find_flows(tmp_path / "f.py", root=tmp_path)
    assert (flow.name, flow.description, flow.parameters["properties"]) == ("my-daily-flow", "given", {})


def test_version_is_the_decorators_or_the_files_md5(tmp_path: Path) -> None:
    """Prefect's default flow version is the MD5 of the flow's file."""
    import hashlib

    source = "from prefect import flow\n@flow(version='2.1')\ndef a(): pass\n@flow\ndef b(): pass\n"
    (tmp_path / "v.py").write_text(source)
    a, b = find_flows(tmp_path / "v.py", root=tmp_path)
    assert (a.version, b.version) == ("2.1", hashlib.md5(source.encode()).hexdigest())
    assert flow_at("v.py:b", root=tmp_path).version == b.version


def test_star_args_and_star_kwargs_are_parameters_as_in_prefect(tmp_path: Path) -> None:
    """The schema Prefect 3.9's ``parameter_schema`` gives for this signature (without its empty
    ``definitions``): ``*args`` an array after the positional ones, ``**kwargs`` an object last."""
    (tmp_path / "f.py").write_text("def f(a: int, *args: str, b=2, **kwargs):\n    pass\n")
    assert flow_at("f.py:f", root=tmp_path).parameters == {
        "title": "Parameters",
        "type": "object",
        "required": ["a"],
        "properties": {
            "a": {"position": 0, "title": "a", "type": "integer"},
            "args": {
                "default": [],
                "items": {"type": "string"},
                "position": 1,
                "title": "args",
                "type": "array",
            },
            "b": {"default": 2, "position": 2, "title": "b"},
            "kwargs": {
                "additionalProperties": True,
                "default": {},
                "position": 3,
                "title": "kwargs",
                "type": "object",
            },
        },
    }
