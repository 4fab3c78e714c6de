"""The validity cache (stepengine/_cache.py) saves time but never changes a validation result.

The key must tell apart any two documents that differ in value or type anywhere; only documents a
full validation found valid are recorded; and with the cache on, every document gets exactly the
issues it gets with the cache off.
"""

from __future__ import annotations

import datetime
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import stepengine
from stepengine import _cache
from stepengine.errors import ValidationError
from stepengine.loader import parse_document
from stepengine.schema import _schema_bytes, check_document

ROOT = Path(__file__).resolve().parents[1]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-3, max_value=3),
    st.floats(allow_nan=False, min_value=-3, max_value=3),
    st.sampled_from(["", "1", "1.0", "True", "None", "a", "s1:a", "i1;", "datetime.date(2020, 1, 1)"]),
    st.dates(min_value=datetime.date(2020, 1, 1), max_value=datetime.date(2020, 1, 3)),
)
values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=3),
        st.dictionaries(
            st.one_of(st.sampled_from(["a", "b", "1", ""]), st.integers(0, 2), st.booleans()),
            children,
            max_size=3,
        ),
    ),
    max_leaves=8,
)


def _same(a: object, b: object) -> bool:
    """Equal values of identical types all the way down (what the cache key must distinguish)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        assert isinstance(b, dict)
        return (
            list(a) == list(b)
            and all(_same(x, y) for x, y in zip(a, b, strict=False))
            and all(_same(a[k], b[k]) for k in a)
        )
    if isinstance(a, list):
        assert isinstance(b, list)
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=False))
    return bool(a == b) and repr(a) == repr(b)


def _encoding(value: object) -> str:
    out: list[str] = []
    _cache._encode(value, out)
    return "".join(out)


@given(values, values)
def test_encoding_is_injective(a: object, b: object) -> None:
    assert (_encoding(a) == _encoding(b)) == _same(a, b)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (1, 1.0),
        (1, True),
        (0, False),
        (1, "1"),
        (None, "None"),
        ({1: "x"}, {"1": "x"}),
        (datetime.date(2020, 1, 1), "datetime.date(2020, 1, 1)"),
        (["ab"], ["a", "b"]),
        ({"a": "b"}, ["a", "b"]),
        ({"a": ["b"]}, {"a": "b"}),
        ("s1:a", "a"),
    ],
)
def test_key_tells_apart_values_of_different_types(a: object, b: object) -> None:
    schema = _schema_bytes()
    assert _cache.document_key({"pull": [{"x": {"v": a}}]}, schema) != _cache.document_key(
        {"pull": [{"x": {"v": b}}]}, schema
    )


def test_key_depends_on_the_schema() -> None:
    assert _cache.document_key({"pull": []}, b"{}") != _cache.document_key(
        {"pull": []}, b'{"type": "object"}'
    )


VALID = """\
pull:
  - prefect.deployments.steps.run_shell_script:
      id: greet
      script: echo hi
deployments:
  - name: d
    schedule:
      cron: "* * * * *"
"""

# each mutation of VALID is a schema error
INVALID = [
    VALID.replace("script: echo hi", "script: echo hi\n    extra: 1"),
    VALID.replace("id: greet", "id: 5"),
    VALID.replace("pull:", "pull: 5\nx:"),
    VALID.replace('cron: "* * * * *"', "cron: 5"),
    VALID.replace("name: d", "name: 7"),
    VALID.replace("- name: d", "- name: d\n    pull: 5"),
]


def _entries(home: Path) -> set[str]:
    directory = home / ".stepengine" / "cache" / "valid-documents"
    return set(os.listdir(directory)) if directory.exists() else set()


def test_only_valid_documents_are_recorded(_isolated_home: Path) -> None:
    assert check_document(parse_document(VALID, "prefect.yaml")) == []
    assert len(_entries(_isolated_home)) == 1
    for text in INVALID:
        issues = check_document(parse_document(text, "prefect.yaml"))
        assert any(i.severity == "error" for i in issues), text
    assert len(_entries(_isolated_home)) == 1


def test_cached_and_uncached_results_are_identical(monkeypatch: pytest.MonkeyPatch) -> None:
    for text in [VALID, *INVALID]:
        for _ in range(2):  # the second time, the cache has seen the document
            cached = check_document(parse_document(text, "prefect.yaml"))
            monkeypatch.setenv("STEPENGINE_NO_CACHE", "1")
            uncached = check_document(parse_document(text, "prefect.yaml"))
            monkeypatch.delenv("STEPENGINE_NO_CACHE")
            assert cached == uncached


documents = st.fixed_dictionaries(
    {},
    optional={
        "name": values,
        "pull": st.one_of(
            values, st.lists(st.dictionaries(st.sampled_from(["a.b", "run"]), values, max_size=2), max_size=2)
        ),
        "deployments": st.one_of(
            values,
            st.lists(st.fixed_dictionaries({"name": values}, optional={"schedule": values}), max_size=2),
        ),
    },
)


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(first=documents, second=documents)
def test_a_cached_valid_document_never_vouches_for_another(
    first: dict, second: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever was validated (and maybe cached) before, the next document's issues are exactly the uncached ones."""
    from stepengine.loader import Document

    def issues(data: dict) -> list:
        return check_document(Document(data, {(): (1, 1)}, "prefect.yaml"))

    issues(first)
    issues(second)
    cached = issues(second)
    monkeypatch.setenv("STEPENGINE_NO_CACHE", "1")
    assert cached == issues(second)
    monkeypatch.delenv("STEPENGINE_NO_CACHE")


def test_no_cache_setting_writes_nothing(_isolated_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STEPENGINE_NO_CACHE", "1")
    stepengine.loads(VALID)
    assert not (_isolated_home / ".stepengine" / "cache").exists()


def test_unwritable_home_still_validates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("STEPENGINE_HOME", str(blocker))
    stepengine.loads(VALID)
    with pytest.raises(ValidationError):
        stepengine.loads(INVALID[0])


def test_a_second_run_of_an_unchanged_file_does_not_import_jsonschema(tmp_path: Path) -> None:
    (tmp_path / "prefect.yaml").write_text(VALID)
    code = textwrap.dedent(
        """\
        import sys, stepengine
        stepengine.load("prefect.yaml")
        print("jsonschema" in sys.modules)
        """
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    runs = [
        subprocess.run(
            [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, check=False
        )
        for _ in range(2)
    ]
    assert [r.stdout.strip() for r in runs] == ["True", "False"], [r.stderr for r in runs]
    # an edited file is validated again (and an invalid edit is reported)
    (tmp_path / "prefect.yaml").write_text(INVALID[1])
    again = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, check=False
    )
    assert again.returncode == 1
    expected = (
        "stepengine.ValidationError: prefect.yaml:3:7: pull[0] (run_shell_script): expected a string, got an "
        'integer 5 (pull[0]."prefect.deployments.steps.run_shell_script".id)'
    )
    assert again.stderr.splitlines()[-1] == expected
