"""Templating: Prefect's placeholder grammar, resolved once, strictly by default."""

from __future__ import annotations

import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stepengine.errors import TemplateError
from stepengine.masking import Masker
from stepengine.resolvers import InMemoryResolver
from stepengine.templating import MISSING, TemplateContext, find_placeholders, render


def ctx(namespace: dict | None = None, **kwargs: object) -> TemplateContext:
    kwargs.setdefault("env", {"HOME": "/home/u", "EMPTY": ""})
    kwargs.setdefault("masker", Masker())
    return TemplateContext(namespace if namespace is not None else {}, **kwargs)  # type: ignore[arg-type]


# -- properties ---------------------------------------------------------------------------------

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=10,
)


@settings(max_examples=200, deadline=None)
@given(st.text().filter(lambda s: "{{" not in s))
def test_text_without_placeholders_is_unchanged(text: str) -> None:
    assert render(text, ctx()) == text


@settings(max_examples=200, deadline=None)
@given(_json)
def test_whole_value_placeholder_returns_the_exact_object(value: object) -> None:
    namespace = {"step": {"out": value}}
    assert render("{{ step.out }}", ctx(namespace)) == value
    assert render("{{step.out}}", ctx(namespace)) == value


@settings(max_examples=200, deadline=None)
@given(
    st.text(alphabet=string.printable + "{}$", max_size=40),
    st.text(alphabet=string.ascii_letters, max_size=10),
)
def test_render_once_inserted_text_is_never_scanned_again(inserted: str, suffix: str) -> None:
    """Whatever a step output contains ({{ $SECRET }} included) arrives literally."""
    namespace = {"a": {"out": inserted}}
    rendered = render("x-{{ a.out }}-" + suffix, ctx(namespace, env={"SECRET": "leaked"}))
    assert rendered == f"x-{inserted}-{suffix}"


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.from_regex(r"[a-z][a-z0-9_-]{0,6}", fullmatch=True), st.integers(), min_size=1))
def test_every_placeholder_is_found_with_its_kind(names: dict) -> None:
    text = " ".join(f"{{{{ {n} }}}}" for n in names)
    found = find_placeholders(text)
    assert [p.name for p in found] == list(names)
    assert {p.kind for p in found} == {"output"}


# -- behaviour ---------------------------------------------------------------------------------


def test_step_output_by_id_and_flat() -> None:
    namespace = {"clone": {"directory": "repo"}, "directory": "repo", "build": {"tags": ["a", "b"]}}
    c = ctx(namespace)
    assert render("{{ clone.directory }}", c) == "repo"
    assert render("{{ directory }}", c) == "repo"
    assert render("{{ build.tags[1] }}", c) == "b"


def test_ids_with_dashes_and_spaces_inside_braces() -> None:
    c = ctx({"get-commit": {"stdout": "abc123"}})
    assert render("{{get-commit.stdout}}", c) == "abc123"
    assert render("{{   get-commit.stdout   }}", c) == "abc123"


def test_two_placeholders_in_one_string_and_types_in_text() -> None:
    c = ctx({"a": {"n": 3, "f": 1.5, "t": True, "z": None}})
    assert render("{{ a.n }}/{{ a.f }}", c) == "3/1.5"
    assert render("{{ a.t }} {{ a.z }}!", c) == "True None!"  # str(None), as Prefect inserts it


def test_env_placeholder() -> None:
    c = ctx()
    assert render("{{ $HOME }}/x", c) == "/home/u/x"
    assert render("{{ $HOME }}", c) == "/home/u"
    assert render("{{ $EMPTY }}", c) == ""


def test_missing_env_var_is_an_error_with_hint() -> None:
    with pytest.raises(TemplateError) as info:
        render("{{ $NOPE }}", ctx())
    assert str(info.value) == (
        "environment variable 'NOPE' is not set\nhint: export NOPE=… before the run, or use {{ $NOPE | default('…') }}"
    )


def test_missing_reference_names_candidates() -> None:
    with pytest.raises(TemplateError) as info:
        render("{{ clon.directory }}", ctx({"clone": {"directory": "x"}, "directory": "x"}))
    assert str(info.value) == (
        "{{ clon.directory }} refers to 'clon', which no earlier step produced (did you mean 'clone'?)\n"
        "hint: available names: clone, directory"
    )


def test_missing_key_of_an_existing_output() -> None:
    with pytest.raises(TemplateError) as info:
        render("{{ clone.dir }}", ctx({"clone": {"directory": "x"}}))
    assert str(info.value) == (
        "{{ clone.dir }} cannot be resolved: 'clone' has no 'dir' (did you mean 'directory'?)\nhint: clone has: directory"
    )


def test_allow_missing_gives_prefects_behaviour() -> None:
    """A missing output as the whole value drops its key; anything else missing becomes empty text
    (Prefect's apply_values renders an unset environment variable as "" even as the whole value)."""
    c = ctx({}, allow_missing=True)
    assert render({"a": "{{ nope.x }}", "b": "x{{ nope }}y", "c": ["{{ nope }}", 1]}, c) == {
        "b": "xy",
        "c": [1],
    }
    assert render("{{ nope }}", c) is MISSING
    assert render("{{ $NOPE }}", c) == ""


def test_allow_missing_inserts_a_dict_as_prefect_does_but_not_a_blocks() -> None:
    c = ctx(
        {"a": {"d": {"k": 1}, "l": [1, "x"]}},
        allow_missing=True,
        resolver=InMemoryResolver(blocks={"json/cfg": {"value": {"k": 1}}}),
    )
    assert render("x {{ a.d }} {{ a.l }}", c) == "x {'k': 1} [1, 'x']"
    with pytest.raises(TemplateError, match="is a dict and cannot be inserted into text"):
        render("x {{ prefect.blocks.json.cfg }}", c)


def test_dict_inside_text_is_an_error() -> None:
    with pytest.raises(TemplateError, match=r"\{\{ a.d \}\} is a dict and cannot be inserted into text"):
        render("x {{ a.d }}", ctx({"a": {"d": {"k": 1}}}))


def test_ctx_placeholders_are_left_for_the_worker() -> None:
    assert render("{{ ctx.flow.name }}-{{ a }}", ctx({"a": 1})) == "{{ ctx.flow.name }}-1"
    assert render("{{ ctx.flow_run.id }}", ctx()) == "{{ ctx.flow_run.id }}"


def test_blocks_value_unwrapping_fields_and_secret_masking() -> None:
    masker = Masker()
    resolver = InMemoryResolver(
        blocks={
            "secret/gh-token": "ghp_s3cr3tvalue",
            "aws-credentials/prod": {
                "aws_access_key_id": "AKIAEXAMPLE",
                "aws_secret_access_key": "wJalrXUtnFEMI",
            },
            "json/cfg": {"a": {"b": [1, 2]}},
        }
    )
    c = ctx(resolver=resolver, masker=masker)
    assert render("{{ prefect.blocks.secret.gh-token }}", c) == "ghp_s3cr3tvalue"
    assert render("{{ prefect.blocks.secret.gh-token.value }}", c) == "ghp_s3cr3tvalue"
    assert render("{{ prefect.blocks.aws-credentials.prod }}", c)["aws_access_key_id"] == "AKIAEXAMPLE"
    assert render("{{ prefect.blocks.json.cfg.a.b[1] }}", c) == 2
    assert masker.mask("t=ghp_s3cr3tvalue k=wJalrXUtnFEMI id=AKIAEXAMPLE") == "t=*** k=*** id=AKIAEXAMPLE"


def test_missing_block_and_field() -> None:
    c = ctx(resolver=InMemoryResolver(blocks={"json/cfg": {"a": 1}}))
    with pytest.raises(TemplateError, match=r"^block secret/none not found$"):
        render("{{ prefect.blocks.secret.none }}", c)
    with pytest.raises(TemplateError, match=r"^block json/cfg has no field 'b'\nhint: its fields: a$"):
        render("{{ prefect.blocks.json.cfg.b }}", c)


def test_blocks_without_a_store() -> None:
    with pytest.raises(TemplateError, match="needs a block store, and none is configured"):
        render("{{ prefect.blocks.secret.x }}", ctx())


def test_variables() -> None:
    c = ctx(resolver=InMemoryResolver(variables={"branch": "main", "n": 2}))
    assert render("{{ prefect.variables.branch }}", c) == "main"
    assert render("{{ prefect.variables.n }}", c) == 2
    with pytest.raises(TemplateError, match=r"^variable 'nope' not found$"):
        render("{{ prefect.variables.nope }}", c)


def test_jinja_expressions_in_a_sandbox() -> None:
    c = ctx({"a": {"n": 2}}, env={"BRANCH": "dev"})
    assert render("{{ $BRANCH | default('main') }}", c) == "dev"
    assert render("{{ $UNSET | default('main') }}", c) == "main"
    assert render("{{ a.n * 2 }}", c) == 4
    with pytest.raises(TemplateError, match="is undefined|undefined"):
        render("{{ nothing + 1 }}", c)
    with pytest.raises(TemplateError, match="not allowed|undefined|unsafe"):
        render("{{ a.__class__.__mro__ | string }}", c)
    # the same path in the plain grammar is a data lookup, never attribute access
    with pytest.raises(TemplateError, match="'a' has no '__class__.__mro__'"):
        render("{{ a.__class__.__mro__ }}", c)


def test_a_dollar_name_inside_a_quoted_string_in_an_expression_stays_text() -> None:
    c = ctx(env={"HOME": "/home/u", "USER": "ann"})
    assert render("{{ 'price: $5, home: $HOME' ~ ' ' ~ $USER }}", c) == "price: $5, home: $HOME ann"
    assert render('{{ "$USER" | upper }}', c) == "$USER"
    assert render("{{ ('$HOME', $HOME) | join(' ') }}", c) == "$HOME /home/u"


def test_a_reference_starting_with_an_index_is_a_template_error() -> None:
    """``{{ [0].x }}`` names no output: a located template error, not a crash in the suggestion."""
    with pytest.raises(TemplateError) as info:
        render("{{ [0].x }}", ctx({"clone": {}}))
    assert str(info.value) == (
        "{{ [0].x }} refers to 0, which no earlier step produced\nhint: available names: clone"
    )


def test_a_template_error_is_located_on_a_copy_and_the_raised_one_is_left_alone() -> None:
    """``TemplateError.locate`` (errors are never changed after being raised): the copy names the step
    and the argument's line; the original keeps its text, hint and cause."""
    from stepengine.config import Step

    step = Step(
        "pull", 1, "prefect.deployments.steps.git_clone", {"branch": "{{ $NOPE }}"}, id="clone", file="p.yaml"
    ).replace(argument_positions={"branch": (7, 15)}, line=6, col=5)
    with pytest.raises(TemplateError) as info:
        render("{{ $NOPE }}", TemplateContext(env={}))
    original = info.value
    located = original.locate(step, argument="branch")
    assert str(located).splitlines()[0] == (
        "p.yaml:7:15: pull[1] (clone: git_clone): environment variable 'NOPE' is not set"
    )
    assert (located.hint, located.placeholder) == (original.hint, original.placeholder)
    assert str(original).splitlines()[0] == "environment variable 'NOPE' is not set"
    assert original.file is None and original.section is None
    with_context = original.locate(context="deployment 'd' → parameters: ")
    assert with_context.detail == "deployment 'd' → parameters: environment variable 'NOPE' is not set"
    assert original.with_hint("another").hint == "another" and original.hint != "another"
