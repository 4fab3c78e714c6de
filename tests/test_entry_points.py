"""The entry-point listing cache (stepengine/_entry_points.py): reused while ``sys.path`` is unchanged,
rescanned after an install, and never able to hide a step from the registry.

Distributions here are real ``*.dist-info`` directories in a temporary ``sys.path`` entry, read by
``importlib.metadata`` exactly as installed ones are.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from stepengine._entry_points import read_entry_points
from stepengine.errors import StepLookupError
from stepengine.registry import Registry

GROUP = "stepengine.test-cache-steps"
OLD = time.time() - 3600  # older than the 2-second "install in progress" window


def _install(site: Path, dist: str, steps: dict[str, str], *, age: float | None = OLD) -> None:
    info = site / f"{dist}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    lines = [f"[{GROUP}]"] + [f"{name} = {target}" for name, target in steps.items()]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
    if age is not None:
        os.utime(site, (age, age))


def _module(site: Path, name: str, body: str) -> None:
    (site / f"{name}.py").write_text(body)
    os.utime(site, (OLD, OLD))


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "site"
    path.mkdir()
    # listings are not cached while a sys.path directory changed in the last 2 s: another test may
    # just have installed a package
    newest = max((os.stat(p).st_mtime for p in sys.path if p and os.path.isdir(p)), default=0)
    time.sleep(max(0.0, newest + 2.1 - time.time()))
    monkeypatch.syspath_prepend(str(path))
    return path


def _names(found: list) -> list[tuple[str, str, str | None, str | None]]:
    return sorted(f[:4] for f in found)


def _cache_files(home: Path) -> list[Path]:
    directory = home / ".stepengine" / "cache" / "entry-points"
    return sorted(directory.iterdir()) if directory.exists() else []


def test_listing_is_cached_while_sys_path_is_unchanged(site: Path, _isolated_home: Path) -> None:
    _install(site, "alpha", {"hello": "alpha_steps:hello"})
    first = read_entry_points(GROUP)
    assert _names(first) == [("hello", "alpha_steps:hello", "alpha", "1.0")]
    assert len(_cache_files(_isolated_home)) == 1
    # an in-place edit that leaves every sys.path mtime alone is not seen without a fresh scan...
    (site / "alpha-1.0.dist-info" / "entry_points.txt").write_text(f"[{GROUP}]\n")
    os.utime(site, (OLD, OLD))
    assert _names(read_entry_points(GROUP)) == _names(first)
    # ...which fresh=True (and the registry's fallback, below) makes
    assert read_entry_points(GROUP, fresh=True) == []


def test_an_install_changes_the_key(site: Path) -> None:
    _install(site, "alpha", {"hello": "alpha_steps:hello"})
    read_entry_points(GROUP)
    _install(site, "beta", {"bye": "beta_steps:bye"}, age=None)  # just now: site's mtime changes
    assert _names(read_entry_points(GROUP)) == [
        ("bye", "beta_steps:bye", "beta", "1.0"),
        ("hello", "alpha_steps:hello", "alpha", "1.0"),
    ]


def test_no_listing_is_cached_during_an_install(site: Path, _isolated_home: Path) -> None:
    _install(site, "alpha", {"hello": "alpha_steps:hello"}, age=None)
    read_entry_points(GROUP)
    assert _cache_files(_isolated_home) == []


def test_cached_entry_points_load_their_target(site: Path) -> None:
    _module(site, "greeting_steps", "def hello(name):\n    return {'greeting': 'hi ' + name}\n")
    _install(site, "alpha", {"hello": "greeting_steps:hello"})
    read_entry_points(GROUP)
    (loadable,) = [f[4] for f in read_entry_points(GROUP)]
    assert loadable.load()(name="x") == {"greeting": "hi x"}


def test_registry_rescans_before_calling_a_step_unknown(site: Path) -> None:
    _module(site, "stale_steps", "def hello():\n    return {}\n\ndef later():\n    return {'late': True}\n")
    _install(site, "alpha", {"hello": "stale_steps:hello"})
    Registry(group=GROUP).resolve("hello")  # caches the listing
    # a stale listing: the new entry point is added without changing any sys.path mtime
    (site / "alpha-1.0.dist-info" / "entry_points.txt").write_text(
        f"[{GROUP}]\nhello = stale_steps:hello\nlater = stale_steps:later\n"
    )
    os.utime(site, (OLD, OLD))
    step = Registry(group=GROUP).resolve("later")
    assert (step.target, step.distribution, step.func()) == ("stale_steps:later", "alpha", {"late": True})


def test_registry_rescans_when_a_cached_entry_point_is_gone(site: Path) -> None:
    _module(site, "gone_steps", "def hello():\n    return {}\n")
    _install(site, "alpha", {"hello": "gone_steps:hello"})
    assert len(read_entry_points(GROUP)) == 1  # caches the listing; the module is never imported
    (site / "alpha-1.0.dist-info" / "entry_points.txt").write_text(f"[{GROUP}]\n")
    (site / "gone_steps.py").unlink()
    os.utime(site, (OLD, OLD))
    with pytest.raises(StepLookupError) as info:
        Registry(group=GROUP).resolve("hello")
    # the message comes from the fresh scan: no such entry point, not "cannot be imported"
    assert info.value.detail == "unknown step 'hello'"


def test_no_cache_setting(site: Path, _isolated_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STEPENGINE_NO_CACHE", "1")
    _install(site, "alpha", {"hello": "alpha_steps:hello"})
    assert _names(read_entry_points(GROUP)) == [("hello", "alpha_steps:hello", "alpha", "1.0")]
    assert _cache_files(_isolated_home) == []
    assert sys.path[0] == str(site)
