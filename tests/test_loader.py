"""The loader: YAML → data, a position for every key and item, duplicate keys rejected."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from stepengine.errors import ConfigError, YAMLSyntaxError
from stepengine.loader import load_document, parse_document


def test_positions_of_keys_and_items() -> None:
    """Every mapping key and sequence item is located 1-based (line, column)."""
    doc = parse_document(
        textwrap.dedent(
            """\
            name: demo
            pull:
              - prefect.deployments.steps.git_clone:
                  id: clone
                  repository: https://example.invalid/r.git
            """
        ),
        "prefect.yaml",
    )
    assert doc.positions[("name",)] == (1, 1)
    assert doc.positions[("pull",)] == (2, 1)
    assert doc.positions[("pull", 0)] == (3, 5)
    assert doc.positions[("pull", 0, "prefect.deployments.steps.git_clone")] == (3, 5)
    assert doc.positions[("pull", 0, "prefect.deployments.steps.git_clone", "repository")] == (5, 7)
    # a path without its own position falls back to the nearest ancestor
    assert doc.position(("pull", 0, "prefect.deployments.steps.git_clone", "id", "x")) == (4, 7)


def test_duplicate_key_names_both_lines() -> None:
    """A repeated key inside a step would silently drop an argument in Prefect: here it is an error."""
    text = "pull:\n  - run:\n      script: a\n      script: b\n"
    with pytest.raises(YAMLSyntaxError) as info:
        parse_document(text, "prefect.yaml")
    assert str(info.value) == (
        "prefect.yaml:4:7: duplicate key 'script' (first defined on line 3); "
        "the later value would silently replace the earlier one"
    )
    assert (info.value.line, info.value.col) == (4, 7)


def test_anchors_aliases_and_merge_keys() -> None:
    """definitions: with anchors, aliases and << merges work; explicit keys win over merged ones."""
    doc = parse_document(
        textwrap.dedent(
            """\
            definitions:
              common: &common
                stream_output: false
                directory: /tmp
            pull:
              - run_shell_script:
                  <<: *common
                  directory: /srv
                  script: ls
              - run_shell_script: *common
            """
        )
    )
    first, second = doc.data["pull"]
    assert first["run_shell_script"] == {"stream_output": False, "directory": "/srv", "script": "ls"}
    assert second["run_shell_script"] == {"stream_output": False, "directory": "/tmp"}
    assert doc.positions[("pull", 0, "run_shell_script", "directory")] == (8, 7)


def test_merge_of_a_non_mapping_is_an_error() -> None:
    with pytest.raises(YAMLSyntaxError, match=r"<string>:2:5: a merge key \(<<\) needs a mapping"):
        parse_document("a: &x 1\nb: {<<: *x}\n")


def test_syntax_error_is_located() -> None:
    with pytest.raises(YAMLSyntaxError) as info:
        parse_document("pull:\n  - a: [1, 2\n  - b: 3\n", "f.yaml")
    assert info.value.file == "f.yaml"
    assert info.value.line == 3
    assert str(info.value).startswith("f.yaml:3:")


def test_empty_document_is_none() -> None:
    assert parse_document("# only a comment\n").data is None


def test_missing_file() -> None:
    with pytest.raises(ConfigError, match=r"^nope\.yaml: no such file$"):
        load_document("nope.yaml")


def test_non_scalar_key_rejected() -> None:
    with pytest.raises(YAMLSyntaxError, match="a mapping key must be a plain value"):
        parse_document("? [a, b]\n: 1\n")


# -- property: positions are right for generated YAML -------------------------------------------

_keys = st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True)
_scalars = st.one_of(st.integers(-1000, 1000), st.booleans(), st.from_regex(r"[a-z]{1,10}", fullmatch=True))
_trees = st.recursive(
    _scalars,
    lambda children: st.one_of(
        st.lists(children, min_size=1, max_size=4),
        st.dictionaries(_keys, children, min_size=1, max_size=4),
    ),
    max_leaves=12,
)


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(_keys, _trees, min_size=1, max_size=4), st.sampled_from([True, False]))
def test_generated_yaml_round_trips_with_correct_positions(data: dict, flow: bool) -> None:
    """Data survives the round trip, and every recorded key position points at that key's text."""
    text = yaml.safe_dump(data, default_flow_style=flow, sort_keys=False)
    doc = parse_document(text)
    assert doc.data == data
    lines = text.splitlines()
    for path, (line, col) in doc.positions.items():
        if path and isinstance(path[-1], str):
            assert lines[line - 1][col - 1 :].lstrip("'\"").startswith(path[-1]), (path, line, col)


# -- the parsed-document cache ------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(_keys, _trees, min_size=1, max_size=4))
def test_cached_parse_equals_a_fresh_parse(data: dict) -> None:
    """A second load of the same text comes from the cache and is indistinguishable from a parse."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = f"{tmp}/prefect.yaml"
        with open(path, "w") as handle:
            handle.write(yaml.safe_dump(data, sort_keys=False))
        first = load_document(path)
        second = load_document(path)
        assert second == first
        assert second == parse_document(open(path).read(), path)


def test_damaged_cache_entries_are_ignored(tmp_path: Path) -> None:
    from stepengine.paths import home_directory

    path = tmp_path / "prefect.yaml"
    path.write_text("pull: []\nname: x\n")
    load_document(path)
    entries = list((home_directory() / "cache" / "parsed-documents").iterdir())
    assert len(entries) == 1
    entries[0].write_bytes(b"\x00garbage")
    assert load_document(path).data == {"pull": [], "name": "x"}


def test_values_marshal_cannot_hold_are_parsed_every_time(tmp_path: Path) -> None:
    path = tmp_path / "prefect.yaml"
    path.write_text("when: 2026-01-01T10:00:00\n")
    assert load_document(path).data["when"].year == 2026
    assert load_document(path).data["when"].year == 2026


def test_no_cache_switch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from stepengine.paths import home_directory

    monkeypatch.setenv("STEPENGINE_NO_CACHE", "1")
    path = tmp_path / "prefect.yaml"
    path.write_text("name: x\n")
    load_document(path)
    assert not (home_directory() / "cache" / "parsed-documents").exists()


# -- alias expansion is bounded (issue 14) ------------------------------------------------------


def _nested_aliases(levels: int) -> str:
    """The classic alias bomb: each level a list of nine aliases to the level below."""
    lines = ['a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    for level in range(1, levels + 1):
        lines.append(f"a{level}: &a{level} [" + ", ".join([f"*a{level - 1}"] * 9) + "]")
    return "\n".join(lines) + "\npull: []\n"


@pytest.mark.parametrize("levels", [5, 9])
def test_an_alias_bomb_is_refused_at_the_alias_that_crosses_the_limit(levels: int) -> None:
    """Five levels used to take seconds and hundreds of MB (nine never finished): now refused at once,
    located at the alias where the added nodes pass the limit, naming the first alias too."""
    with pytest.raises(YAMLSyntaxError) as info:
        parse_document(_nested_aliases(levels), "bomb.yaml")
    # a1..a4 add 9 * (10 + 91 + 820 + 7381) = 74,718 nodes; the first *a4 on line 6 adds 66,430 more
    assert (info.value.line, info.value.col) == (6, 10)
    assert str(info.value) == (
        "bomb.yaml:6:10: aliases in this document add more than 100,000 nodes (the limit), passed at "
        "this alias; the first alias is at 2:10\n"
        "hint: write the repeated data out, or share less of it through anchors and aliases"
    )


def test_the_limit_is_exact() -> None:
    """Aliases may add exactly MAX_ALIAS_NODES nodes; one more is refused, at the alias that adds it."""
    from stepengine.loader import MAX_ALIAS_NODES

    assert MAX_ALIAS_NODES == 100_000
    items = ", ".join(["1"] * 999)  # a list of 999 scalars: 1,000 nodes
    at_limit = f"s: &s 1\nl: &l [{items}]\nuses: [" + ", ".join(["*l"] * 100) + "]\n"
    assert len(parse_document(at_limit).data["uses"]) == 100
    with pytest.raises(YAMLSyntaxError) as info:
        parse_document(at_limit + "one_more: *s\n")
    assert (info.value.line, info.value.col) == (4, 11)


def test_a_refused_document_is_not_cached(tmp_path: Path) -> None:
    from stepengine.paths import home_directory

    path = tmp_path / "prefect.yaml"
    path.write_text(_nested_aliases(6))
    with pytest.raises(YAMLSyntaxError):
        load_document(path)
    entries = home_directory() / "cache" / "parsed-documents"
    assert not entries.exists() or not list(entries.iterdir())


def test_merge_keys_count_what_they_merge() -> None:
    """``<<: *defaults`` in many mappings counts each merge, so merges cannot be used to expand without bound."""
    defaults = "{" + ", ".join(f"k{i}: {i}" for i in range(499)) + "}"  # 999 nodes
    text = f"d: &d {defaults}\nitems:\n" + "".join(f"  - {{<<: *d, n: {i}}}\n" for i in range(101))
    with pytest.raises(YAMLSyntaxError, match="add more than 100,000 nodes") as info:
        parse_document(text)
    assert info.value.line == 103
    assert len(parse_document(text.rsplit("  - ", 1)[0]).data["items"]) == 100


def test_recursive_aliases_are_still_reported_as_such() -> None:
    with pytest.raises(YAMLSyntaxError, match="recursive alias"):
        parse_document("a: &a [*a]\n")
