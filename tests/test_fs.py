"""atomic_directory and safe_join: nothing half-done, nothing outside its target."""

from __future__ import annotations

from pathlib import Path

import pytest

from stepengine.errors import StepError
from stepengine.fs import atomic_directory, safe_join


def test_success_replaces_the_target(tmp_path: Path) -> None:
    target = tmp_path / "out"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with atomic_directory(target) as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".out.")
        (tmp / "new.txt").write_text("new")
    assert sorted(p.name for p in target.iterdir()) == ["new.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


@pytest.mark.parametrize("error", [RuntimeError("boom"), KeyboardInterrupt()])
def test_failure_keeps_the_previous_content_and_leaves_no_temporary(
    tmp_path: Path, error: BaseException
) -> None:
    target = tmp_path / "out"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with pytest.raises(type(error)):
        with atomic_directory(target) as tmp:
            (tmp / "partial").write_text("x")
            raise error
    assert [p.name for p in tmp_path.iterdir()] == ["out"]
    assert (target / "old.txt").read_text() == "old"


def test_no_replace(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    with pytest.raises(StepError, match="already exists"):
        with atomic_directory(tmp_path / "out", replace=False):
            pass


@pytest.mark.parametrize("key", ["../x", "a/../../x", "/etc/passwd", "a\\b", "a\0b", "C:/x", ""])
def test_safe_join_rejects_escapes(tmp_path: Path, key: str) -> None:
    with pytest.raises(StepError, match="refusing unsafe path"):
        safe_join(tmp_path, key)


def test_safe_join_rejects_symlink_escape(tmp_path: Path) -> None:
    (tmp_path / "root").mkdir()
    (tmp_path / "root" / "link").symlink_to(tmp_path)
    with pytest.raises(StepError, match="resolves outside"):
        safe_join(tmp_path / "root", "link/secret")


def test_safe_join_accepts_nested(tmp_path: Path) -> None:
    assert safe_join(tmp_path, "a/b/c.txt") == tmp_path.resolve() / "a" / "b" / "c.txt"
