"""Private means private: one rule for ``stepengine/`` and ``builtin_steps/``, checked on the source (AST).

The rule (pluggy's and httpx's convention):

- A name that starts with ``_`` (dunders aside) is private to the module that defines it. No other module
  imports it (``from m import _name``), reads or writes it through the module (``m._name``), reads or
  writes it on an object of another module's class (``obj._attr``, ``getattr(obj, "_attr")``), or
  overrides it in a subclass of another module's class. A shared piece gets a public name on its owner.
- A module whose name starts with ``_`` (``stepengine/_cache.py``, ``builtin_steps/_blob_io.py``) is private
  to its package: modules of that package (and of its subpackages) may import it and use its public names;
  no module outside the package may.
- An exception is not changed after it has been raised: an ``except … as exc`` block does not assign
  ``exc.<field>``; it raises a new (or a located copy, e.g. ``TemplateError.locate``) ``from`` it.

What is checked statically: imports, ``module._name`` through an imported in-scope module, ``obj._attr``
where ``_attr`` is defined only in other in-scope modules (not in the module using it), ``getattr``/
``setattr``/``hasattr`` with a constant private name, and private methods overridden across modules.
Private names of third-party code (``os._exit``, ``sys._getframe``, a named tuple's ``_replace``) are not our
rule's business and are not flagged.

``builtin_steps/`` is read once, under its own name (it is installed as ``stepengine.builtin_steps``; the
checkout's ``stepengine/builtin_steps`` is a symlink to it, which the scan does not follow).

Out of scope: ``stepengine/project/_stand_in/prefect/``. It is not part of stepengine's module tree at run
time: it is put on ``sys.path`` as the top-level package ``prefect`` for flow code when Prefect is absent,
and it imitates Prefect's own layout and public names one for one. Its package-internal helpers (e.g.
``prefect.runtime._info`` used by ``prefect.runtime.flow_run``) must stay underscored, because a public
name there would be a name real Prefect does not have, which a flow could then come to rely on. stepengine's
own modules only put the folder on ``sys.path`` and never import from it, which this test does check;
what a stand-in object carries under an underscore is Prefect's name (``Block._block_type_slug``), which
stepengine may read as it reads real Prefect's.
"""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("stepengine", "builtin_steps")
OUT_OF_SCOPE = ("stepengine.project._stand_in",)
#: the standard library's public names that start with ``_`` (a named tuple's), which a module of ours
#: may also define for the same meaning (``config._Value._fields``)
STDLIB_PUBLIC = {"_fields", "_field_defaults", "_asdict", "_replace", "_make"}


def _is_private(name: str) -> bool:
    dunder = name.startswith("__") and name.endswith("__")
    return name.startswith("_") and not dunder and name != "_" and name not in STDLIB_PUBLIC


@dataclasses.dataclass
class Module:
    name: str  # dotted
    path: Path
    tree: ast.Module
    is_package: bool
    #: every private name this module defines: functions, classes, assignments, attributes it stores
    defines: set[str] = dataclasses.field(default_factory=set)


def _modules() -> dict[str, Module]:
    found: dict[str, Module] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            is_package = parts[-1] == "__init__"
            if is_package:
                parts.pop()
            module = Module(".".join(parts), path, ast.parse(path.read_text(encoding="utf-8")), is_package)
            module.defines = _definitions(module.tree)
            found[module.name] = module
    return found


def _definitions(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.add(node.attr)
        elif isinstance(node, ast.alias):
            names.add(node.asname or node.name.split(".")[0])
        elif isinstance(node, ast.arg):
            names.add(node.arg)
    return {name for name in names if _is_private(name)}


def _in_scope(name: str) -> bool:
    return name.split(".")[0] in PACKAGES


def _checked(module: Module) -> bool:
    return not any(module.name == out or module.name.startswith(out + ".") for out in OUT_OF_SCOPE)


def _absolute(module: Module, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.name.split(".")
    if not module.is_package:
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _module_allowed(importer: str, target: str) -> bool:
    """May ``importer`` import the module ``target``? Only if each private component's package holds it."""
    parts = target.split(".")
    for index, part in enumerate(parts):
        if _is_private(part):
            package = ".".join(parts[:index])
            if importer != package and not importer.startswith(package + "."):
                return False
    return True


def reach_ins(modules: dict[str, Module] | None = None) -> list[str]:
    """Every place that breaks the rule, as ``path:line: what``."""
    modules = modules if modules is not None else _modules()
    problems: list[str] = []
    for module in modules.values():
        if _checked(module):
            problems.extend(_module_reach_ins(module, modules))
    return problems


def _module_reach_ins(module: Module, modules: dict[str, Module]) -> list[str]:
    where = module.path.relative_to(ROOT)
    problems: list[str] = []
    #: local name -> in-scope module it is bound to (``import a.b as c``, ``from a import b``)
    module_aliases: dict[str, str] = {}
    #: local name -> in-scope module a class/function was imported from (``from a import Cls``)
    imported_from: dict[str, str] = {}

    def problem(node: ast.AST, text: str) -> None:
        problems.append(f"{where}:{getattr(node, 'lineno', 0)}: {text}")

    for node in ast.walk(module.tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if not _in_scope(alias.name):
                    continue
                if not _module_allowed(module.name, alias.name):
                    problem(node, f"imports private module {alias.name}")
                if alias.asname:
                    module_aliases[alias.asname] = alias.name
        elif isinstance(node, ast.ImportFrom):
            source = _absolute(module, node)
            if not _in_scope(source):
                continue
            if not _module_allowed(module.name, source):
                problem(node, f"imports from private module {source}")
            for alias in node.names:
                full = f"{source}.{alias.name}"
                if full in modules:  # a submodule
                    if not _module_allowed(module.name, full):
                        problem(node, f"imports private module {full}")
                    module_aliases[alias.asname or alias.name] = full
                    continue
                if _is_private(alias.name) and source != module.name:
                    problem(node, f"imports {alias.name} from {source}")
                imported_from[alias.asname or alias.name] = source

    # the stand-in's names are Prefect's (it imitates them), so a Prefect object's ``_block_type_slug``
    # read by stepengine is a third-party private name, as with real Prefect
    others = set().union(*(m.defines for m in modules.values() if m.name != module.name and _checked(m)))

    def foreign(name: str) -> bool:
        return _is_private(name) and name not in module.defines and name in others

    for node in ast.walk(module.tree):
        if isinstance(node, ast.Attribute) and _is_private(node.attr):
            value = node.value
            if isinstance(value, ast.Name) and value.id in module_aliases:
                target = module_aliases[value.id]
                if f"{target}.{node.attr}" in modules:
                    if not _module_allowed(module.name, f"{target}.{node.attr}"):
                        problem(node, f"uses private module {target}.{node.attr}")
                else:
                    problem(node, f"uses {target}.{node.attr}")
            elif foreign(node.attr):
                problem(node, f"uses another module's private attribute .{node.attr}")
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ("getattr", "setattr", "hasattr", "delattr")
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and isinstance(node.args[1].value, str)
            and _is_private(node.args[1].value)
            and node.args[1].value not in module.defines
            and node.args[1].value in others
        ):
            problem(node, f"{node.func.id}(…, {node.args[1].value!r}) on another module's object")
        elif isinstance(node, ast.ClassDef):
            for base in node.bases:
                if isinstance(base, ast.Name) and base.id in imported_from:
                    owner = modules.get(imported_from[base.id])
                    if owner is None:
                        continue
                    for item in node.body:
                        if (
                            isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef))
                            and _is_private(item.name)
                            and item.name in owner.defines
                        ):
                            problem(item, f"overrides {owner.name}'s private {base.id}.{item.name}")
        elif isinstance(node, ast.ExceptHandler) and node.name:
            for inner in ast.walk(node):
                if (
                    isinstance(inner, ast.Attribute)
                    and isinstance(inner.ctx, (ast.Store, ast.Del))
                    and isinstance(inner.value, ast.Name)
                    and inner.value.id == node.name
                    and not inner.attr.startswith("__")
                ):
                    problem(inner, f"changes the caught exception's .{inner.attr} after it was raised")
    return problems


def test_no_module_reaches_into_another_modules_private_names() -> None:
    problems = reach_ins()
    assert not problems, "\n".join(problems)


def test_the_checker_finds_each_kind_of_reach_in(tmp_path: Path) -> None:
    """The checker itself, on a tiny made-up tree: each kind of reach-in is found, the allowed uses are not."""
    sources = {
        "stepengine/__init__.py": "",
        "stepengine/owner.py": (
            "class Base:\n    def _hook(self): ...\n\n"
            "class Thing:\n    def __init__(self):\n        self._secret = 1\n\n"
            "def _helper(): ...\n"
        ),
        "stepengine/_private_mod.py": "def public(): ...\ndef _inner(): ...\n",
        "stepengine/user.py": (
            "from stepengine.owner import _helper, Base\n"
            "from stepengine import owner\n"
            "from stepengine import _private_mod\n"
            "from stepengine._private_mod import public\n"
            "owner._helper()\n"
            "def f(thing):\n    return thing._secret\n"
            "def g(thing):\n    return getattr(thing, '_secret')\n"
            "class Sub(Base):\n    def _hook(self): ...\n"
            "def h():\n    try:\n        pass\n    except ValueError as exc:\n        exc.line = 3\n        raise\n"
        ),
        "builtin_steps/__init__.py": "",
        "builtin_steps/outsider.py": "from stepengine import _private_mod\n",
    }
    modules: dict[str, Module] = {}
    for relative, text in sources.items():
        path = ROOT / relative  # only for the names in messages
        parts = list(Path(relative).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts.pop()
        module = Module(".".join(parts), path, ast.parse(text), is_package)
        module.defines = _definitions(module.tree)
        modules[module.name] = module
    found = "\n".join(reach_ins(modules))
    assert "imports _helper from stepengine.owner" in found
    assert "uses stepengine.owner._helper" in found
    assert "private attribute ._secret" in found
    assert "getattr(…, '_secret')" in found
    assert "overrides stepengine.owner's private Base._hook" in found
    assert "changes the caught exception's .line" in found
    assert "outsider.py:1: imports private module stepengine._private_mod" in found
    assert "user.py:3:" not in found and "user.py:4:" not in found  # private module, same package
    assert len(found.splitlines()) == 7
