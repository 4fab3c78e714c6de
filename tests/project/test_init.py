"""``init`` and the recipes: every recipe renders a valid, lint-clean file; fields; auto-detection."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import stepengine
from stepengine.errors import ConfigError
from stepengine.project.init import (
    choose_recipe,
    detect_fields,
    init_project,
    parse_fields,
)
from stepengine.project.recipes import all_recipes, get_recipe, render_template

RECIPES = [
    "azure",
    "docker",
    "docker-azure",
    "docker-gcs",
    "docker-git",
    "docker-s3",
    "gcs",
    "git",
    "local",
    "s3",
]
#: values for every field any recipe declares
FIELDS = {
    "image_name": "127.0.0.1:5000/team/app",
    "bucket": "my-bucket",
    "project": "my-gcp-project",
    "container": "code",
    "credentials_block": "dev",
    "repository": "https://git.example.com/org/flows.git",
    "branch": "main",
}


def _git(cwd: Path, *args: str) -> None:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@x",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@x",
    }
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, env=env)


def _yamllint(path: Path) -> str:
    """yamllint with its default rules; returns every problem (warnings included)."""
    from yamllint import linter
    from yamllint.config import YamlLintConfig

    problems = linter.run(path.read_text(), YamlLintConfig("extends: default"))
    return "\n".join(f"{p.line}:{p.column}: {p.level}: {p.message}" for p in problems)


def test_the_ten_recipes_are_shipped() -> None:
    assert sorted(all_recipes()) == RECIPES
    for recipe in all_recipes().values():
        assert recipe.description, recipe.name
        assert recipe.distribution is None


@pytest.mark.parametrize("name", RECIPES)
def test_each_recipe_renders_a_valid_lint_clean_file(name: str, tmp_path: Path) -> None:
    """Rendered with long values (yamllint's 80 columns), it loads, validates and lints clean."""
    project = tmp_path / ("a-project-with-quite-a-long-directory-name-" + name)
    project.mkdir()
    fields = dict(
        FIELDS, repository="https://git.example.com/" + "very-long-organisation-name/" * 3 + "flows.git"
    )
    used = get_recipe(name).used_fields
    result = init_project(project, recipe=name, fields={k: v for k, v in fields.items() if k in used})
    assert result.created == ["prefect.yaml", ".prefectignore", ".prefect/"]
    config = stepengine.load(project / "prefect.yaml", strict=True)
    assert config.name == project.name
    assert _yamllint(project / "prefect.yaml") == ""
    # recipe fields are filled; step-output placeholders survive for deploy
    text = (project / "prefect.yaml").read_text()
    recipe = get_recipe(name)
    for field in recipe.used_fields:
        assert "{{ " + field + " }}" not in text
    if name.startswith("docker"):
        assert config.deployments[0].data["work_pool"]["job_variables"] == {
            "image": "{{ build_image.image }}"
        }
        assert config.sections["push"][0].arguments["image_name"] == "{{ build_image.image_name }}"
    if name in ("s3", "docker-s3"):
        pull = config.sections["pull"][0]
        assert pull.arguments == {
            "bucket": "{{ push_code.bucket }}",
            "folder": "{{ push_code.folder }}",
            "credentials": "{{ prefect.blocks.aws-credentials.dev }}",
        }
    if name.endswith("git"):
        assert config.sections["pull"][0].arguments["repository"] == fields["repository"]
    stepengine.validate(config)


@given(value=st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=60))
@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
def test_any_field_value_round_trips_into_the_yaml(value: str) -> None:
    """Quotes, colons, '#', backslashes, newlines, unicode: the file holds exactly the value given."""
    text = render_template(get_recipe("git").template, {"name": "p", "repository": value, "branch": "main"})
    data = yaml.safe_load(text)
    assert data["pull"][0]["prefect.deployments.steps.git_clone"]["repository"] == value


def test_only_recipe_fields_are_replaced() -> None:
    text = 'a: "{{ name }}"\nb: "{{ build_image.image }}"\nc: "{{ other }}"\nd: "{{ $HOME }}"\n'
    assert (
        render_template(text, {"name": "x"})
        == 'a: "x"\nb: "{{ build_image.image }}"\nc: "{{ other }}"\nd: "{{ $HOME }}"\n'
    )
    # one pass: a value that looks like a placeholder is not expanded again
    assert render_template('a: "{{ name }}"', {"name": "{{ name }}"}) == 'a: "{{ name }}"'


@pytest.mark.parametrize(
    ("remote", "dockerfile", "expected"),
    [
        (True, True, "docker-git"),
        (True, False, "git"),
        (False, True, "docker"),
        (False, False, "local"),
    ],
)
def test_recipe_chosen_from_the_directory(
    tmp_path: Path, remote: bool, dockerfile: bool, expected: str
) -> None:
    project = tmp_path / "proj"
    project.mkdir()
    if remote:
        _git(project, "init", "-q", "-b", "trunk")
        _git(project, "remote", "add", "origin", "https://user:s3cr3t-token@git.example.com/org/proj.git")
    if dockerfile:
        (project / "Dockerfile").write_text("FROM scratch\n")
    fields = {"image_name": "org/proj"} if dockerfile else {}
    result = init_project(project, fields=fields)
    assert result.recipe == expected
    reasons = {
        "docker-git": "a git remote (https://git.example.com/org/proj.git) and a Dockerfile were found",
        "git": "a git remote (https://git.example.com/org/proj.git) was found and no Dockerfile",
        "docker": "a Dockerfile was found and no git remote",
        "local": "no git remote and no Dockerfile were found",
    }
    assert result.reason == reasons[expected]
    text = (project / "prefect.yaml").read_text()
    assert "s3cr3t-token" not in text  # a token in the remote URL never lands in the file
    config = stepengine.load(project / "prefect.yaml")
    if remote:
        clone = config.sections["pull"][0].arguments
        assert clone["repository"] == "https://git.example.com/org/proj.git"
        assert clone["branch"] == "trunk"
    if dockerfile:
        assert config.sections["build"][0].arguments["dockerfile"] == "Dockerfile"
    if expected == "local":
        assert config.sections["pull"][0].arguments == {"directory": str(project.resolve())}


def test_detected_fields_without_git_or_dockerfile(tmp_path: Path) -> None:
    assert detect_fields(tmp_path) == {
        "name": tmp_path.name,
        "directory": str(tmp_path.resolve()),
        "dockerfile": "auto",
    }
    assert choose_recipe(tmp_path) == ("local", "no git remote and no Dockerfile were found")


def test_field_and_name_options_win_over_detection(tmp_path: Path) -> None:
    result = init_project(
        tmp_path,
        recipe="docker",
        name="renamed",
        fields=parse_fields(["image_name=org/app", "tag=v=1", "dockerfile=docker/Dockerfile"]),
    )
    assert result.fields == {
        "name": "renamed",
        "image_name": "org/app",
        "tag": "v=1",
        "dockerfile": "docker/Dockerfile",
    }
    build = stepengine.load(tmp_path / "prefect.yaml").sections["build"][0].arguments
    assert build == {"image_name": "org/app", "tag": "v=1", "dockerfile": "docker/Dockerfile"}


def test_bad_field_syntax() -> None:
    with pytest.raises(ConfigError) as info:
        parse_fields(["novalue"])
    assert str(info.value) == "--field 'novalue' is not key=value\nhint: e.g. --field image_name=org/app"


def test_missing_fields_are_listed_together_and_nothing_is_written(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        init_project(tmp_path, recipe="docker-s3")
    assert str(info.value) == (
        "recipe 'docker-s3' needs 3 more fields:\n"
        "  image_name: the image repository, e.g. registry.example.com/team/app\n"
        "  bucket: the S3 bucket the code is uploaded to\n"
        "  credentials_block: the name of an aws-credentials block\n"
        "hint: give them as --field image_name=... --field bucket=... --field credentials_block=..."
    )
    assert list(tmp_path.iterdir()) == []


def test_missing_fields_are_prompted_for_when_a_prompt_is_given(tmp_path: Path) -> None:
    asked = []

    def prompt(name: str, help_text: str, default: str | None) -> str:
        asked.append((name, help_text))
        return {"bucket": "b", "credentials_block": "c"}[name]

    init_project(tmp_path, recipe="s3", prompt=prompt)
    assert asked == [
        ("bucket", "the S3 bucket the code is uploaded to"),
        ("credentials_block", "the name of an aws-credentials block"),
    ]
    push = stepengine.load(tmp_path / "prefect.yaml").sections["push"][0].arguments
    assert push["bucket"] == "b" and push["credentials"] == "{{ prefect.blocks.aws-credentials.c }}"


def test_unknown_recipe_lists_the_recipes(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        init_project(tmp_path, recipe="dokcer")
    assert str(info.value) == (
        "unknown recipe 'dokcer' (did you mean 'docker'?)\n"
        f"hint: recipes: {', '.join(RECIPES)} (see `stepengine recipe ls`)"
    )


def test_init_twice_changes_nothing(tmp_path: Path) -> None:
    init_project(tmp_path, recipe="local")
    (tmp_path / ".prefect" / "flows.json").write_text("{}")
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    again = init_project(tmp_path, recipe="git", fields={"repository": "r", "branch": "b"})
    assert again.created == []
    assert again.existing == ["prefect.yaml", ".prefectignore", ".prefect/"]
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before


def test_third_party_recipe_through_an_entry_point(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A real .dist-info on sys.path registers a recipe folder under ``stepengine.recipes``."""
    package = tmp_path / "site" / "acme_recipes"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "prefect.yaml").write_text(
        'name: "{{ name }}"\npull:\n  - acme.fetch:\n      where: "{{ where }}"\n'
    )
    (package / "recipe.yaml").write_text(
        "description: Acme's way\nfields:\n  name: {}\n  where:\n    help: the place\n"
    )
    info = tmp_path / "site" / "acme_recipes-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-recipes\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[stepengine.recipes]\nacme = acme_recipes\n")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    recipe = all_recipes()["acme"]
    assert (recipe.description, recipe.distribution, recipe.used_fields) == (
        "Acme's way",
        "acme-recipes",
        ["name", "where"],
    )
    project = tmp_path / "p"
    project.mkdir()
    init_project(project, recipe="acme", fields={"where": "there"})
    assert yaml.safe_load((project / "prefect.yaml").read_text()) == {
        "name": "p",
        "pull": [{"acme.fetch": {"where": "there"}}],
    }


def test_an_unknown_field_is_refused_with_the_recipes_fields(tmp_path: Path) -> None:
    """A mistyped --field is an error naming the recipe's fields, not silently dropped (and then
    prompted for, or written with its default)."""
    with pytest.raises(ConfigError) as info:
        init_project(tmp_path, recipe="s3", fields={"bucket": "b", "credentials": "prod"})
    assert str(info.value) == (
        "recipe 's3' has no field 'credentials' (did you mean 'credentials_block'?)\n"
        "hint: its fields: name, bucket, credentials_block"
    )
    assert list(tmp_path.iterdir()) == []
