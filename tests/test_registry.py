"""The registry: entry points (built-in and third-party alike), dotted paths, conflicts, lazy loading."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from stepengine.errors import StepLookupError
from stepengine.registry import Registry


def _make_distribution(site: Path, dist: str, module: str, steps: dict[str, str], body: str) -> None:
    """A real installed distribution: a module plus a .dist-info with entry_points.txt."""
    (site / f"{module}.py").write_text(textwrap.dedent(body))
    info = site / f"{dist}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    lines = "\n".join(f"{name} = {target}" for name, target in steps.items())
    (info / "entry_points.txt").write_text(f"[stepengine.steps]\n{lines}\n")


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "site"
    directory.mkdir()
    monkeypatch.syspath_prepend(str(directory))
    return directory


def test_builtin_steps_come_through_entry_points_under_short_and_prefect_names() -> None:
    registry = Registry()
    short = registry.resolve("set_working_directory")
    prefect = registry.resolve("prefect.deployments.steps.set_working_directory")
    assert short.func is prefect.func
    assert short.distribution == "stepengine"
    assert short.target == "stepengine.builtin_steps.filesystem:set_working_directory"
    for name in (
        "prefect.deployments.steps.run_shell_script",
        "prefect.deployments.steps.pip_install_requirements",
        "prefect.projects.steps.set_working_directory",
    ):
        assert name in registry.names()


def test_third_party_entry_point(site: Path) -> None:
    _make_distribution(
        site, "acme_steps", "acme_steps", {"acme": "acme_steps:acme"}, "def acme(x):\n    return {'x': x}\n"
    )
    step = Registry().resolve("acme")
    assert step.func(x=1) == {"x": 1}
    assert (step.distribution, step.version) == ("acme_steps", "1.0")


def test_two_distributions_registering_one_name_is_reported(site: Path) -> None:
    _make_distribution(site, "one", "one_mod", {"dup": "one_mod:f"}, "def f():\n    pass\n")
    _make_distribution(site, "two", "two_mod", {"dup": "two_mod:f"}, "def f():\n    pass\n")
    with pytest.raises(StepLookupError) as info:
        Registry().resolve("dup")
    assert str(info.value) == (
        "step 'dup' is registered by more than one distribution: one (one_mod:f), two (two_mod:f)\n"
        "hint: uninstall one of them, or write the step as its module path (pkg.module:function)"
    )


def test_dotted_paths_in_both_spellings(site: Path) -> None:
    (site / "plain_mod.py").write_text("def step(a):\n    return {'a': a}\n")
    registry = Registry()
    assert registry.resolve("plain_mod.step").func(a=2) == {"a": 2}
    assert registry.resolve("plain_mod:step").target == "plain_mod:step"


def test_unknown_step_lists_closest_names() -> None:
    with pytest.raises(StepLookupError) as info:
        Registry().resolve("prefect.deployments.steps.git_clon")
    message = str(info.value)
    assert message.startswith(
        "unknown step 'prefect.deployments.steps.git_clon': no entry point of that name and no module "
        "'prefect.deployments.steps' (did you mean 'prefect.deployments.steps.git_clone' or "
    )
    assert message.endswith("?)\nhint: run 'stepengine steps' to list the installed steps")


@pytest.mark.parametrize(
    ("typo", "offered"),
    [
        (
            "prefect.deployments.steps.set_working_directry",
            ["prefect.deployments.steps.set_working_directory"],
        ),
        (
            "prefect.deployments.steps.git_clon",
            ["prefect.deployments.steps.git_clone", "prefect.deployments.steps.pull.agit_clone"],
        ),
    ],
)
def test_a_suggestion_names_each_function_once(typo: str, offered: list[str]) -> None:
    """A step has up to nine names (its Prefect aliases): a typo is offered the closest name of each
    function, not three spellings of one."""
    with pytest.raises(StepLookupError) as info:
        Registry().resolve(typo)
    suggested = str(info.value).split("(did you mean ", 1)[1].split("?)", 1)[0]
    assert suggested.split(" or ") == [repr(name) for name in offered]


def test_missing_module_with_requires_says_what_to_install() -> None:
    with pytest.raises(StepLookupError) as info:
        Registry().resolve("prefect_snowflake.steps.thing", requires=("prefect-snowflake>=1",))
    assert (
        info.value.hint
        == "install it with: pip install prefect-snowflake>=1   (or run with --install-requires)"
    )


def test_broken_import_inside_a_step_module_is_shown(site: Path) -> None:
    (site / "broken_mod.py").write_text("import not_installed_dependency_xyz\ndef f():\n    pass\n")
    with pytest.raises(
        StepLookupError, match="importing broken_mod failed: No module named 'not_installed_dependency_xyz'"
    ):
        Registry().resolve("broken_mod.f")


def test_not_callable(site: Path) -> None:
    (site / "const_mod.py").write_text("VALUE = 3\n")
    with pytest.raises(StepLookupError, match="^step 'const_mod.VALUE' is a int, not a function$"):
        Registry().resolve("const_mod.VALUE")


def test_explicit_steps_take_precedence() -> None:
    def mine() -> dict:
        return {}

    assert Registry({"set_working_directory": mine}).resolve("set_working_directory").func is mine


def test_entry_points_are_loaded_lazily() -> None:
    """Resolving one step imports only its module, not every registered step's."""
    code = (
        "import sys\nfrom stepengine.registry import Registry\n"
        "Registry().resolve('set_working_directory')\n"
        "print(sorted(m for m in sys.modules if m.startswith('stepengine.builtin_steps.')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['stepengine.builtin_steps.filesystem']"
