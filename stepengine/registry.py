"""The step registry: step names → callables, through the ``stepengine.steps`` entry-point group.

Lookup order for a name written in a file:

1. steps passed explicitly (``stepengine.run(..., steps={"name": func})``),
2. an entry point of that name (built-in steps are registered exactly like third-party ones),
3. an importable dotted path, ``pkg.mod.func`` or ``pkg.mod:func``,

else a ``StepLookupError`` listing the closest known names. Entry points are read once and loaded only
for the steps a run uses; two distributions registering one name is reported, never silently shadowed.
"""

from __future__ import annotations

import importlib
import sys
import typing as t

from stepengine.errors import StepLookupError

if t.TYPE_CHECKING:
    from stepengine._entry_points import LazyEntryPoint

__all__ = ["GROUP", "Registration", "Registry", "StepFunction"]

#: the entry-point group step packages publish under
GROUP = "stepengine.steps"


class StepFunction(t.NamedTuple):
    """A resolved step: the callable and where it came from."""

    name: str
    func: t.Callable[..., t.Any]
    #: ``module:qualname`` of the callable
    target: str
    #: the distribution that registered it (``None`` for explicit steps and dotted paths)
    distribution: str | None = None
    version: str | None = None


class Registration(t.NamedTuple):
    """One entry point of the group: a step name and where it points (``registrations()``)."""

    name: str
    value: str
    distribution: str | None
    version: str | None
    entry_point: LazyEntryPoint


class Registry:
    """Resolves step names. Cheap to create; entry points are read on first use."""

    def __init__(
        self, steps: t.Mapping[str, t.Callable[..., t.Any]] | None = None, *, group: str = GROUP
    ) -> None:
        self._explicit = dict(steps or {})
        self._group = group
        self._registrations: dict[str, list[Registration]] | None = None
        self._cache: dict[str, StepFunction] = {}
        #: whether the registrations come from a scan made by this registry (not a cached listing)
        self._fresh = False

    # -- discovery -------------------------------------------------------------------------------

    def registrations(self) -> dict[str, list[Registration]]:
        """Every entry point of the group, by name (a list: more than one means a conflict)."""
        if self._registrations is None:
            from stepengine._entry_points import read_entry_points

            found: dict[str, list[Registration]] = {}
            for name, value, dist, version, entry_point in read_entry_points(self._group, fresh=self._fresh):
                regs = found.setdefault(name, [])
                if not any(r.distribution == dist and r.value == value for r in regs):
                    regs.append(Registration(name, value, dist, version, entry_point))
            self._registrations = found
        return self._registrations

    def names(self) -> list[str]:
        """Every name a file can use without a dotted import path."""
        return sorted(set(self._explicit) | set(self.registrations()))

    # -- lookup ----------------------------------------------------------------------------------

    def resolve(self, name: str, *, requires: t.Sequence[str] = ()) -> StepFunction:
        """The step called ``name``, imported. Raises ``StepLookupError``."""
        if name in self._cache:
            return self._cache[name]
        step = self._resolve(name, requires)
        self._cache[name] = step
        return step

    def _resolve(self, name: str, requires: t.Sequence[str]) -> StepFunction:
        try:
            return self._lookup(name, requires)
        except StepLookupError:
            if self._fresh or name in self._explicit:
                raise
            # the cached entry-point listing may predate an install or removal: scan, then look again
            self._fresh = True
            self._registrations = None
            return self._lookup(name, requires)

    def _lookup(self, name: str, requires: t.Sequence[str]) -> StepFunction:
        if not isinstance(name, str):
            raise StepLookupError(f"a step name must be text, not {name!r}", function=str(name))
        if name in self._explicit:
            func = self._explicit[name]
            return StepFunction(name, func, _target(func))
        registrations = self.registrations().get(name)
        if registrations:
            if len(registrations) > 1:
                sources = ", ".join(
                    f"{r.distribution} ({r.value})"
                    for r in sorted(registrations, key=lambda r: str(r.distribution))
                )
                raise StepLookupError(
                    f"step {name!r} is registered by more than one distribution: {sources}",
                    function=name,
                    hint="uninstall one of them, or write the step as its module path (pkg.module:function)",
                )
            (reg,) = registrations
            try:
                func = reg.entry_point.load()
            except (Exception, SystemExit) as exc:
                raise StepLookupError(
                    (
                        f"step {name!r} (from {reg.distribution}) cannot be imported: {type(exc).__name__}: "
                        f"{exc}"
                    ),
                    function=name,
                    hint=_install_hint(requires, reg.distribution),
                ) from exc
            _check_callable(name, func)
            return StepFunction(name, func, reg.value, reg.distribution, reg.version)
        return self._import_path(name, requires)

    def _import_path(self, name: str, requires: t.Sequence[str]) -> StepFunction:
        def suggestion() -> str:  # only on failure: a successful import needs no difflib
            from stepengine._suggest import did_you_mean

            registrations = self.registrations()

            def target(candidate: str) -> object:  # a step's aliases name one function: offer one
                found = registrations.get(candidate)
                return found[0].value if found else candidate

            return did_you_mean(name, self.names(), same=target)

        module_name, sep, attr = name.partition(":")
        if not sep:
            module_name, _, attr = name.rpartition(".")
        if not module_name or not attr:
            raise StepLookupError(
                f"unknown step {name!r}" + suggestion(),
                function=name,
                hint="run 'stepengine steps' to list the installed steps",
            )
        if not all(part.isidentifier() for part in module_name.split(".")) or not attr.isidentifier():
            # a relative name (.os.system), an empty part (os..system) or one that is no Python name:
            # never handed to the import system
            raise StepLookupError(
                f"unknown step {name!r}: not an entry-point name, and not an absolute module path "
                "(pkg.module.function or pkg.module:function)" + suggestion(),
                function=name,
                hint="run 'stepengine steps' to list the installed steps",
            )
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            missing = getattr(exc, "name", None)
            if missing and module_name != missing and not module_name.startswith(missing + "."):
                # the module exists but one of *its* imports failed: that is the real problem
                raise StepLookupError(
                    f"step {name!r}: importing {module_name} failed: {exc}",
                    function=name,
                    hint=_install_hint(requires, missing),
                ) from exc
            raise StepLookupError(
                f"unknown step {name!r}: no entry point of that name and no module {module_name!r}"
                + suggestion(),
                function=name,
                hint=_install_hint(requires, None)
                or _working_directory_hint(module_name)
                or "run 'stepengine steps' to list the installed steps",
            ) from None
        except (Exception, SystemExit) as exc:  # the module itself is broken (SyntaxError, raises on import)
            raise StepLookupError(
                f"step {name!r}: importing {module_name} failed: {type(exc).__name__}: {exc}",
                function=name,
            ) from exc
        func = getattr(module, attr, None)
        if func is None:
            raise StepLookupError(
                f"unknown step {name!r}: module {module_name!r} has no attribute {attr!r}" + suggestion(),
                function=name,
            )
        _check_callable(name, func)
        return StepFunction(name, func, f"{module_name}:{attr}")

    def drop_cache(self) -> None:
        self._cache.clear()
        self._registrations = None
        self._fresh = True
        importlib.invalidate_caches()


def _check_callable(name: str, func: object) -> None:
    if not callable(func):
        raise StepLookupError(f"step {name!r} is a {type(func).__name__}, not a function", function=name)


def _target(func: object) -> str:
    return f"{getattr(func, '__module__', '?')}:{getattr(func, '__qualname__', repr(func))}"


def _working_directory_hint(module_name: str) -> str | None:
    """Why a module lying in the working directory was not found: stepengine never imports from there
    unless told to (see ``stepengine/__main__.py``)."""
    import os

    top = module_name.split(".")[0]
    if os.path.exists(f"{top}.py") or os.path.isfile(os.path.join(top, "__init__.py")):
        return (
            f"{top} is in the working directory, which stepengine never imports from; if you trust it, "
            "put it on PYTHONPATH (PYTHONPATH=. stepengine ...)"
        )
    return None


def _install_hint(requires: t.Sequence[str], distribution: str | None) -> str | None:
    if requires:
        packages = " ".join(requires)
        return f"install it with: pip install {packages}   (or run with --install-requires)"
    if distribution:
        return f"reinstall or repair the '{distribution}' package"
    return None


def install_requirements(requires: t.Sequence[str]) -> None:
    """Install ``requires`` into the running interpreter (uv when present, else pip). Never implicit."""
    import shutil

    from stepengine.process import run_process

    uv = shutil.which("uv")
    if uv:
        command = [uv, "pip", "install", "--python", sys.executable, *requires]
    else:
        command = [sys.executable, "-m", "pip", "install", *requires]
    run_process(command, hint="the step's 'requires' could not be installed")
    importlib.invalidate_caches()
