"""``init``: prepare a project directory from a recipe, never overwriting anything.

Fields come from, in increasing priority: the recipe's defaults, what the directory shows (``name``,
``directory``, ``repository`` and ``branch`` from git, ``dockerfile``), ``--name``, ``--field``.
Missing required fields are asked for when a ``prompt`` is given (the CLI gives one on a TTY);
otherwise one error lists them all.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import typing as t
from pathlib import Path

from stepengine.errors import ConfigError
from stepengine.project.recipes import Recipe, get_recipe, render_template

__all__ = ["InitResult", "choose_recipe", "detect_fields", "init_project", "parse_fields"]

PREFECTIGNORE = """\
# Files a push step (push_to_s3, push_to_gcs, ...) does not upload; .gitignore syntax.

# stepengine and Prefect state
.prefect/
.prefectignore

# Python
__pycache__/
*.py[cod]
*.egg-info/
.pytest_cache/
.mypy_cache/

# virtual environments
.venv/
venv/
env/

# version control and editors
.git/
.gitignore
.idea/
.vscode/
.DS_Store
"""

Prompt = t.Callable[[str, str, "str | None"], str]


@dataclasses.dataclass
class InitResult:
    """What ``init_project`` did."""

    directory: Path
    recipe: str
    #: why this recipe, when it was chosen automatically
    reason: str | None
    fields: dict[str, str]
    created: list[str]
    existing: list[str]


def parse_fields(pairs: t.Iterable[str]) -> dict[str, str]:
    """``key=value`` strings → dict, split on the first ``=``."""
    fields = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--field {pair!r} is not key=value", hint="e.g. --field image_name=org/app")
        fields[key.strip()] = value
    return fields


def _git(directory: Path, *args: str) -> str | None:
    try:
        result = subprocess.run(
            ["git", "-C", str(directory), *args],
            check=False,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            timeout=10,
            env={**os.environ, "GIT_TERMINAL_PROMPT": "0"},
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    value = result.stdout.strip()
    return value if result.returncode == 0 and value else None


def _strip_userinfo(url: str) -> str:
    """A remote URL may carry a token (``https://user:token@host/...``): never write it to a file."""
    from urllib.parse import urlsplit, urlunsplit

    if "://" not in url:
        return url
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


def detect_fields(directory: str | os.PathLike[str]) -> dict[str, str]:
    """What the directory itself tells: name, directory, git remote and branch, Dockerfile."""
    path = Path(directory).resolve()
    fields = {"name": path.name, "directory": str(path)}
    if _git(path, "rev-parse", "--is-inside-work-tree") == "true":
        remote = _git(path, "config", "--get", "remote.origin.url")
        if remote is None:
            remotes = (_git(path, "remote") or "").split()
            remote = _git(path, "config", "--get", f"remote.{remotes[0]}.url") if remotes else None
        if remote:
            fields["repository"] = _strip_userinfo(remote)
        branch = _git(path, "symbolic-ref", "--short", "-q", "HEAD")
        if branch:
            fields["branch"] = branch
    fields["dockerfile"] = "Dockerfile" if (path / "Dockerfile").is_file() else "auto"
    return fields


def choose_recipe(
    directory: str | os.PathLike[str], detected: t.Mapping[str, str] | None = None
) -> tuple[str, str]:
    """The recipe for a directory, and why: git remote + Dockerfile → docker-git, git remote → git,
    Dockerfile → docker, else local."""
    detected = detected if detected is not None else detect_fields(directory)
    has_remote = "repository" in detected
    has_dockerfile = (Path(directory) / "Dockerfile").is_file()
    if has_remote and has_dockerfile:
        return "docker-git", f"a git remote ({detected['repository']}) and a Dockerfile were found"
    if has_remote:
        return "git", f"a git remote ({detected['repository']}) was found and no Dockerfile"
    if has_dockerfile:
        return "docker", "a Dockerfile was found and no git remote"
    return "local", "no git remote and no Dockerfile were found"


def _fill(recipe: Recipe, values: dict[str, str], prompt: Prompt | None) -> dict[str, str]:
    filled = {}
    missing = []
    for name in recipe.used_fields:
        field = recipe.field(name)
        assert field is not None
        if name in values:
            filled[name] = values[name]
        elif field.default is not None:
            filled[name] = field.default
        else:
            missing.append(field)
    if missing and prompt is not None:
        for field in missing:
            filled[field.name] = prompt(field.name, field.help, None)
        missing = []
    if missing:
        lines = "\n".join(f"  {f.name}: {f.help}" if f.help else f"  {f.name}" for f in missing)
        example = " ".join(f"--field {f.name}=..." for f in missing)
        raise ConfigError(
            f"recipe {recipe.name!r} needs {len(missing)} more "
            f"field{'s' if len(missing) != 1 else ''}:\n{lines}",
            hint=f"give them as {example}",
        )
    return filled


def init_project(
    directory: str | os.PathLike[str] = ".",
    *,
    recipe: str | None = None,
    fields: t.Mapping[str, str] | None = None,
    name: str | None = None,
    prompt: Prompt | None = None,
) -> InitResult:
    """Create ``prefect.yaml``, ``.prefectignore`` and ``.prefect/`` in ``directory`` where absent.

    Raises ``ConfigError`` for an unknown recipe or missing fields (nothing is written then).
    """
    path = Path(directory).resolve()
    if not path.is_dir():
        raise ConfigError(f"{directory}: no such directory")
    detected = detect_fields(path)
    reason = None
    if recipe is None:
        recipe, reason = choose_recipe(path, detected)
    chosen = get_recipe(recipe)
    values = dict(detected)
    if name is not None:
        values["name"] = name
    unknown = [key for key in fields or {} if key not in chosen.used_fields]
    if unknown:
        from stepengine._suggest import did_you_mean

        raise ConfigError(
            f"recipe {chosen.name!r} has no field {unknown[0]!r}"
            + did_you_mean(unknown[0], chosen.used_fields),
            hint=f"its fields: {', '.join(chosen.used_fields)}",
        )
    values.update(fields or {})
    filled = _fill(chosen, values, prompt)
    text = render_template(chosen.template, filled)
    _check_rendered(text, chosen.name)

    created: list[str] = []
    existing: list[str] = []
    target = path / "prefect.yaml"
    if _create_file(target, text):
        created.append("prefect.yaml")
    else:
        existing.append("prefect.yaml")
    if _create_file(path / ".prefectignore", PREFECTIGNORE):
        created.append(".prefectignore")
    else:
        existing.append(".prefectignore")
    state = path / ".prefect"
    if state.is_dir():
        existing.append(".prefect/")
    else:
        state.mkdir()
        created.append(".prefect/")
    return InitResult(path, chosen.name, reason, filled, created, existing)


def _create_file(path: Path, text: str) -> bool:
    """Write ``text`` to ``path`` unless it exists (``O_EXCL``: no race can overwrite a file)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    return True


def _check_rendered(text: str, recipe: str) -> None:
    """The rendered file must load and pass the schema: a field value cannot break it."""
    import stepengine

    try:
        stepengine.loads(text, file=f"<recipe {recipe}>")
    except ConfigError as exc:
        raise ConfigError(f"recipe {recipe!r} rendered an invalid prefect.yaml:\n{exc}") from None
