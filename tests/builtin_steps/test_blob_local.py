"""file:// pulls without fsspec (``_blob_local``) against the fsspec path they replace, on real folders."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import typing as t
from pathlib import Path

import pytest

from stepengine.builtin_steps import _blob_io, _blob_local, blob
from stepengine.step_api import StepError
from tests.conftest import ROOT

TREE = {
    "flows/main.py": b"print('hello')\n",
    "flows/util/helpers.py": b"X = 1\n",
    "empty.txt": b"",
    "with space/ünïcode +&=.txt": "ünïcode".encode(),
    "big.bin": os.urandom(3 * (1 << 20) + 17),
}


@pytest.fixture
def source(tmp_path: Path) -> Path:
    root = tmp_path / "source"
    for rel, body in TREE.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(body)
    os.symlink(root / "flows/main.py", root / "link-to-main.py")  # copied as the file it points to
    return root


def _pull(
    step: t.Callable[[], t.Any], where: Path, monkeypatch: pytest.MonkeyPatch, *, fsspec: bool
) -> tuple[t.Any, ...]:
    work, home = where / "work", where / "home"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    monkeypatch.setenv("STEPENGINE_HOME", str(home))
    monkeypatch.setattr(_blob_io, "_LOCAL_WITHOUT_FSSPEC", not fsspec)
    used: list[t.Any] = []
    real = _blob_local.open_local_reader
    monkeypatch.setattr(_blob_local, "open_local_reader", lambda *a: used.append(real(*a)) or used[-1])
    try:
        result = step()
    except StepError as exc:
        result = f"StepError: {exc}"
    result = json.loads(json.dumps(result).replace(str(work), "<work>"))
    files = {p.relative_to(work).as_posix(): p.read_bytes() for p in sorted(work.rglob("*")) if p.is_file()}
    manifest = {}
    for path in (home / "blob-manifests").glob("*.json"):
        data = json.loads(path.read_text())
        manifest[data["url"]] = {rel: entry["remote"] for rel, entry in data["files"].items()}
    return result, files, manifest, any(reader is not None for reader in used)


def _both_ways(
    step: t.Callable[[], t.Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[t.Any, ...]:
    *via_fsspec, used = _pull(step, tmp_path / "fsspec", monkeypatch, fsspec=True)
    assert not used
    *ours, used = _pull(step, tmp_path / "ours", monkeypatch, fsspec=False)
    assert used
    assert ours == via_fsspec
    return tuple(ours)


@pytest.mark.parametrize("directory", ["code", "."])
def test_same_files_outputs_and_manifest_as_fsspec(
    source: Path, directory: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result, files, manifest = _both_ways(
        lambda: blob.pull_from_blob_storage(source.as_uri(), directory=directory), tmp_path, monkeypatch
    )
    prefix = "" if directory == "." else "code/"
    assert files == {prefix + rel: body for rel, body in TREE.items()} | {
        prefix + "link-to-main.py": TREE["flows/main.py"]
    }
    assert result["transferred"] == len(TREE) + 1
    assert len(manifest[source.as_uri()]) == len(TREE) + 1


def test_one_file_and_a_missing_folder_as_fsspec(
    source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    one = _both_ways(
        lambda: blob.pull_from_blob_storage((source / "big.bin").as_uri(), directory="code"),
        tmp_path / "one",
        monkeypatch,
    )
    assert one[1] == {"code/big.bin": TREE["big.bin"]}
    missing = _both_ways(
        lambda: blob.pull_from_blob_storage((source / "nothing").as_uri(), directory="code"),
        tmp_path / "missing",
        monkeypatch,
    )
    assert (
        missing[0]
        == f"StepError: nothing to pull: no objects under {(source / 'nothing').as_uri()}\nhint: check the bucket and folder names"
    )


def test_a_named_pipe_in_the_source_fails_the_pull_without_waiting(source: Path, workdir: Path) -> None:
    os.mkfifo(source / "flows" / "pipe")
    with pytest.raises(StepError) as info:
        blob.pull_from_blob_storage(source.as_uri(), directory="code")
    assert (
        str(info.value)
        == f"pulling {source.as_uri()} failed: IsADirectoryError: {source}/flows/pipe is not a regular file"
    )
    assert list(workdir.iterdir()) == []


def test_urls_and_options_it_does_not_take_go_to_fsspec() -> None:
    assert _blob_local.open_local_reader("file:///srv/code/", {}, 32)[1] == "/srv/code"  # type: ignore[index]
    for url in ("file://relative/path", "file:///srv/../etc", "file:///srv//code", "memory://b/f"):
        assert _blob_local.open_local_reader(url, {}, 32) is None, url
    assert _blob_local.open_local_reader("file:///srv/code", {"auto_mkdir": False}, 32) is None


def test_a_file_pull_imports_no_fsspec(source: Path, tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from stepengine.builtin_steps import blob\n"
        f"blob.pull_from_blob_storage({source.as_uri()!r}, directory='code')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'fsspec'))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "STEPENGINE_HOME": str(tmp_path / "home")}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
    assert (tmp_path / "code" / "big.bin").read_bytes() == TREE["big.bin"]


def test_into_an_empty_folder_each_top_level_entry_moves_in_with_one_rename(
    source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pull into the working directory stages its files and moves them in once all arrived. When the
    directory holds nothing, no file can conflict: each top-level entry moves in whole (issue 16: a
    ``file://`` pull of 10,000 files at the pace of ``cp -r``); the tree is the same as file by file,
    and a directory that holds something still gets its files one by one, next to what it holds."""
    moves: list[str] = []
    for name in ("rename", "replace"):
        real = getattr(os, name)
        monkeypatch.setattr(
            os, name, lambda a, b, _real=real: moves.append(os.path.basename(b)) or _real(a, b)
        )

    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.chdir(empty)
    monkeypatch.setenv("STEPENGINE_HOME", str(tmp_path / "home"))
    blob.pull_from_blob_storage(source.as_uri(), directory=".")
    tree = {p.relative_to(empty).as_posix(): p.read_bytes() for p in sorted(empty.rglob("*")) if p.is_file()}
    assert tree == {**TREE, "link-to-main.py": TREE["flows/main.py"]}
    placed = [name for name in moves if not name.endswith(".tmp") and not name.endswith(".json")]
    assert sorted(placed) == sorted(["flows", "empty.txt", "with space", "big.bin", "link-to-main.py"])

    moves.clear()
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "mine.txt").write_text("kept")
    monkeypatch.chdir(busy)
    blob.pull_from_blob_storage(source.as_uri(), directory=".")
    merged = {p.relative_to(busy).as_posix(): p.read_bytes() for p in sorted(busy.rglob("*")) if p.is_file()}
    assert merged == {**tree, "mine.txt": b"kept"}
    assert len([n for n in moves if not n.endswith(".tmp") and not n.endswith(".json")]) == len(tree)


def test_a_local_file_that_shrinks_after_the_listing_fails_the_size_check(
    source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The local reader reports the bytes it wrote (no stat of every copy): a file cut short between the
    listing and its copy is still caught, and nothing lands in the working directory."""
    real = _blob_local.LocalReader.get_file

    def shrink_then_copy(self: t.Any, rpath: str, lpath: str) -> t.Any:
        if rpath.endswith("big.bin"):
            os.truncate(rpath, 1000)
        return real(self, rpath, lpath)

    monkeypatch.setattr(_blob_local.LocalReader, "get_file", shrink_then_copy)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("STEPENGINE_HOME", str(tmp_path / "home"))
    with pytest.raises(
        StepError, match=rf"big\.bin: got 1000 bytes, the listing said {len(TREE['big.bin'])}"
    ):
        blob.pull_from_blob_storage(source.as_uri(), directory=".", retries=0)
    assert list(work.iterdir()) == []
