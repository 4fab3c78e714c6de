"""Recipes: a folder with a ``prefect.yaml`` template and a ``recipe.yaml`` (description and fields).

The built-in recipes live in ``stepengine/project/recipes/<name>/``. Other packages add recipes through
the ``stepengine.recipes`` entry-point group; an entry point names a package (its folder is the recipe)
or an object that is a path to the folder::

    [project.entry-points."stepengine.recipes"]
    cloud-run = "my_recipes.cloud_run"

A template holds ``{{ field }}`` placeholders inside double-quoted scalars. Rendering replaces only the
recipe's own fields; every other placeholder (``{{ build_image.image }}``, blocks, variables) stays.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import typing as t
from pathlib import Path

from stepengine.errors import ConfigError

__all__ = ["GROUP", "Recipe", "all_recipes", "get_recipe", "render_template"]

#: the entry-point group third-party recipes publish under
GROUP = "stepengine.recipes"

_BUILTIN_ROOT = Path(__file__).parent / "recipes"
_FIELD_RE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
#: yamllint's default line-length limit: rendered lines longer than this are wrapped
MAX_LINE = 80


@dataclasses.dataclass(frozen=True)
class Field:
    """A value a recipe needs: ``help`` says what it is; a field with a ``default`` is never asked for."""

    name: str
    help: str = ""
    default: str | None = None


@dataclasses.dataclass(frozen=True)
class Recipe:
    """A recipe folder, read."""

    name: str
    path: Path
    description: str
    fields: tuple[Field, ...]
    #: the distribution that provides it (``None`` for the built-in ones)
    distribution: str | None = None

    @property
    def template(self) -> str:
        return (self.path / "prefect.yaml").read_text(encoding="utf-8")

    def field(self, name: str) -> Field | None:
        return next((f for f in self.fields if f.name == name), None)

    @property
    def used_fields(self) -> list[str]:
        """The declared fields the template uses, in the order they are declared."""
        used = set(_FIELD_RE.findall(self.template))
        return [f.name for f in self.fields if f.name in used]


def _read_recipe(name: str, path: Path, distribution: str | None) -> Recipe:
    import yaml

    meta_file = path / "recipe.yaml"
    if not (path / "prefect.yaml").is_file():
        raise ConfigError(f"recipe {name!r} at {path} has no prefect.yaml")
    meta: dict[str, t.Any] = {}
    if meta_file.is_file():
        meta = yaml.safe_load(meta_file.read_text(encoding="utf-8")) or {}
    fields = []
    for field_name, spec in (meta.get("fields") or {}).items():
        spec = spec or {}
        default = spec.get("default")
        fields.append(
            Field(str(field_name), str(spec.get("help", "")), None if default is None else str(default))
        )
    return Recipe(name, path, str(meta.get("description", "")).strip(), tuple(fields), distribution)


def _entry_point_folder(value: t.Any) -> Path:
    if hasattr(value, "__path__"):  # a package
        return Path(next(iter(value.__path__)))
    if hasattr(value, "__file__") and value.__file__:
        return Path(value.__file__).parent
    return Path(os.fspath(str(value)))


def all_recipes() -> dict[str, Recipe]:
    """Every recipe, built-in first, then entry points (which cannot replace a built-in name)."""
    recipes = {}
    for folder in sorted(_BUILTIN_ROOT.iterdir()):
        if folder.is_dir() and (folder / "prefect.yaml").is_file():
            recipes[folder.name] = _read_recipe(folder.name, folder, None)
    from stepengine._entry_points import read_entry_points

    for name, _value, dist, _version, entry_point in read_entry_points(GROUP):
        if name in recipes:
            continue
        try:
            folder = _entry_point_folder(entry_point.load())
            recipes[name] = _read_recipe(name, folder, dist)
        except (ImportError, AttributeError, OSError, ConfigError):
            continue  # a broken plug-in must not break `init` for every other recipe
    return recipes


def get_recipe(name: str) -> Recipe:
    """The recipe called ``name``; ``ConfigError`` listing the recipes otherwise."""
    recipes = all_recipes()
    if name in recipes:
        return recipes[name]
    from stepengine._suggest import did_you_mean

    raise ConfigError(
        f"unknown recipe {name!r}" + did_you_mean(name, list(recipes)),
        hint=f"recipes: {', '.join(recipes)} (see `stepengine recipe ls`)",
    )


def render_template(text: str, values: t.Mapping[str, str]) -> str:
    """Replace ``{{ field }}`` for the fields in ``values`` only, escaped for a double-quoted scalar.

    One pass: text a value brings in is never scanned again. Lines longer than ``MAX_LINE`` of the
    form ``key: "value"`` are wrapped (the value moves to the next line), as yamllint wants.
    """

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            return match.group(0)
        return _escape(str(values[name]))

    rendered = _FIELD_RE.sub(substitute, text)
    return "\n".join(_wrap(line) for line in rendered.split("\n"))


def _escape(value: str) -> str:
    """The inside of a YAML double-quoted scalar: JSON escapes, and ``\\uXXXX`` for anything YAML
    does not allow raw (DEL, C1 controls, unpaired surrogates, other non-printables)."""
    escaped = json.dumps(value, ensure_ascii=False)[1:-1]
    return "".join(c if c.isprintable() or c == " " else _code(c) for c in escaped)


def _code(char: str) -> str:
    point = ord(char)
    return f"\\u{point:04x}" if point <= 0xFFFF else f"\\U{point:08x}"


_KEY_VALUE_RE = re.compile(r'^(?P<indent>\s*(?:- )?)(?P<key>[\w-]+):\s+(?P<value>".*")$')


def _wrap(line: str) -> str:
    if len(line) <= MAX_LINE:
        return line
    match = _KEY_VALUE_RE.match(line)
    if not match:
        return line
    indent = " " * len(match.group("indent"))
    return f"{match.group('indent')}{match.group('key')}:\n{indent}  {match.group('value')}"
