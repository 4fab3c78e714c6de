"""The caches under ``$STEPENGINE_HOME/cache`` are private to their owner and checked for shape (issue 14).

A cache entry decides which function a step name runs (the entry-point listing), what a file says
(the parse cache) and whether a document is validated (the validity cache). So: directories 0700,
files 0600; an entry not owned by the user or writable by others is ignored and rebuilt; an entry of
the wrong shape is ignored, never trusted and never a crash.
"""

from __future__ import annotations

import json
import marshal
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from stepengine import _cache
from stepengine._entry_points import read_entry_points
from stepengine.loader import load_document
from stepengine.paths import home_directory

ROOT = Path(__file__).resolve().parents[1]
GROUP = "stepengine.test-private-steps"
OLD = time.time() - 3600
#: a user id that is not ours, to give a planted file another owner (needs root)
STRANGER = 54321
as_root = pytest.mark.skipif(os.geteuid() != 0, reason="giving a file another owner needs root")

TEXT = "pull:\n  - set_working_directory:\n      directory: /srv/app\n"
REAL = {"pull": [{"set_working_directory": {"directory": "/srv/app"}}]}
FORGED = {"pull": [{"set_working_directory": {"directory": "/forged"}}]}


def _cache_root() -> Path:
    return home_directory() / "cache"


def _forge_parse(path: Path) -> Path:
    """Load ``path`` once (caching it), then overwrite its cache entry with other data."""
    load_document(path)
    entry = Path(_cache.parsed_entry(path.read_text()))  # type: ignore[arg-type]
    entry.write_bytes(marshal.dumps((FORGED, {(): (1, 1)})))
    assert load_document(path).data == FORGED  # the forged entry is what a load reads while it is trusted
    return entry


def test_directories_are_0700_and_files_0600(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever the umask, every cache directory and file is private."""
    old = os.umask(0o000)
    try:
        path = tmp_path / "prefect.yaml"
        path.write_text(TEXT)
        import stepengine

        stepengine.validate(path)  # parse cache, validity cache and the entry-point listing
    finally:
        os.umask(old)
    root = _cache_root()
    kinds = {p.name for p in root.iterdir()}
    assert {"parsed-documents", "valid-documents"} <= kinds
    for directory in [root, *[p for p in root.rglob("*") if p.is_dir()]]:
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700, directory
    files = [p for p in root.rglob("*") if p.is_file()]
    assert files
    for file in files:
        assert stat.S_IMODE(file.stat().st_mode) == 0o600, file


def test_a_loose_cache_directory_of_ours_is_tightened(tmp_path: Path) -> None:
    root = _cache_root()
    root.mkdir(parents=True)
    root.chmod(0o777)
    path = tmp_path / "prefect.yaml"
    path.write_text(TEXT)
    load_document(path)
    assert stat.S_IMODE(root.stat().st_mode) == 0o700


@pytest.mark.parametrize("mode", [0o620, 0o602, 0o666])
def test_a_parse_entry_writable_by_others_is_ignored_and_rebuilt(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "prefect.yaml"
    path.write_text(TEXT)
    entry = _forge_parse(path)
    entry.chmod(mode)
    assert load_document(path).data == REAL
    assert stat.S_IMODE(entry.stat().st_mode) == 0o600  # rebuilt, private again
    assert load_document(path).data == REAL


@as_root
def test_a_parse_entry_owned_by_someone_else_is_ignored_and_rebuilt(tmp_path: Path) -> None:
    path = tmp_path / "prefect.yaml"
    path.write_text(TEXT)
    entry = _forge_parse(path)
    os.chown(entry, STRANGER, -1)
    assert load_document(path).data == REAL
    assert entry.stat().st_uid == os.getuid()


@as_root
def test_a_cache_directory_owned_by_someone_else_is_not_used(tmp_path: Path) -> None:
    path = tmp_path / "prefect.yaml"
    path.write_text(TEXT)
    entry = _forge_parse(path)
    os.chown(entry, STRANGER, -1)
    os.chown(entry.parent, STRANGER, -1)
    assert load_document(path).data == REAL
    assert entry.stat().st_uid == STRANGER  # not read, and not written either
    assert _cache.parsed_entry(TEXT) is None


def test_a_symlinked_parse_entry_is_not_followed(tmp_path: Path) -> None:
    path = tmp_path / "prefect.yaml"
    path.write_text(TEXT)
    entry = _forge_parse(path)
    elsewhere = tmp_path / "planted"
    entry.rename(elsewhere)
    entry.symlink_to(elsewhere)
    assert load_document(path).data == REAL


@pytest.mark.parametrize(
    "blob",
    [
        marshal.dumps(5),
        marshal.dumps((1, 2)),
        marshal.dumps((REAL, {(): (1, 1), ("pull",): "x"})),
        marshal.dumps((REAL, {("pull",): (2, 1)})),  # no root position
        marshal.dumps(({"pull": b"bytes"}, {(): (1, 1)})),
        marshal.dumps(({"pull": {1, 2}}, {(): (1, 1)})),
        marshal.dumps((REAL, [((), (1, 1))])),
        marshal.dumps((REAL, {(): (1, 1)}, "extra")),
        b"\x00garbage",
        b"",
    ],
    ids=[
        "int",
        "pair-of-ints",
        "bad-position",
        "no-root",
        "bytes",
        "set",
        "list-positions",
        "triple",
        "garbage",
        "empty",
    ],
)
def test_a_parse_entry_of_the_wrong_shape_is_ignored(tmp_path: Path, blob: bytes) -> None:
    path = tmp_path / "prefect.yaml"
    path.write_text(TEXT)
    entry = _forge_parse(path)
    entry.write_bytes(blob)
    assert load_document(path).data == REAL


def test_the_cli_survives_a_parse_entry_of_the_wrong_shape(tmp_path: Path) -> None:
    """It used to crash with exit 3 (a tuple of two numbers unpacked as data and positions)."""
    path = tmp_path / "prefect.yaml"
    path.write_text(TEXT)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "stepengine", "validate", str(path)]
    assert subprocess.run(command, env=env, capture_output=True, timeout=60).returncode == 0
    (entry,) = (_cache_root() / "parsed-documents").iterdir()
    entry.write_bytes(marshal.dumps((1, 2)))
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stderr) == (0, f"{path}: valid\n")


def test_a_validity_entry_writable_by_others_vouches_for_nothing(tmp_path: Path) -> None:
    """An entry in valid-documents skips validation: a planted one must not."""
    from stepengine.schema import _schema_bytes

    data = {"pull": "not a list"}
    key = _cache.document_key(data, _schema_bytes())
    assert key is not None
    _cache.remember_valid(key)
    assert _cache.is_known_valid(key)
    entry = _cache_root() / "valid-documents" / key
    entry.chmod(0o666)
    assert not _cache.is_known_valid(key)
    entry.chmod(0o600)
    entry.unlink()
    entry.symlink_to(tmp_path)
    assert not _cache.is_known_valid(key)


# -- the entry-point listing --------------------------------------------------------------------


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "site"
    path.mkdir()
    newest = max((os.stat(p).st_mtime for p in sys.path if p and os.path.isdir(p)), default=0)
    time.sleep(max(0.0, newest + 2.1 - time.time()))
    info = path / "alpha-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: alpha\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[{GROUP}]\nhello = alpha_steps:hello\n")
    (path / "alpha_steps.py").write_text("def hello():\n    return {'from': 'alpha'}\n")
    (path / "planted_steps.py").write_text("def evil():\n    return {'from': 'planted'}\n")
    os.utime(path, (OLD, OLD))
    monkeypatch.syspath_prepend(str(path))
    return path


def _listing() -> Path:
    read_entry_points(GROUP)
    (listing,) = (_cache_root() / "entry-points").iterdir()
    return listing


def _plant(listing: Path, entries: object) -> None:
    cached = json.loads(listing.read_text())
    listing.write_text(json.dumps({"state": cached["state"], "entries": entries}))


def _hello() -> object:
    from stepengine.registry import Registry

    return Registry(group=GROUP).resolve("hello").func()


def test_a_planted_listing_decides_nothing(site: Path) -> None:
    """Replacing the listing used to change which function a step name runs."""
    listing = _listing()
    _plant(listing, [["hello", "planted_steps:evil", "alpha", "1.0"]])
    assert _hello() == {"from": "planted"}  # while the entry is ours and private, it is believed
    listing.chmod(0o646)
    assert _hello() == {"from": "alpha"}
    assert stat.S_IMODE(listing.stat().st_mode) == 0o600  # rebuilt
    if os.geteuid() == 0:
        _plant(listing, [["hello", "planted_steps:evil", "alpha", "1.0"]])
        os.chown(listing, STRANGER, -1)
        assert _hello() == {"from": "alpha"}


@pytest.mark.parametrize(
    "entries",
    [
        [[1, 2, 3, 4]],
        [["hello", "alpha_steps:hello", "alpha"]],
        [["hello", None, "alpha", "1.0"]],
        "hello",
        {"hello": "alpha_steps:hello"},
        [["hello", "alpha_steps:hello", ["alpha"], "1.0"]],
    ],
)
def test_a_listing_of_the_wrong_shape_is_ignored(site: Path, entries: object) -> None:
    listing = _listing()
    _plant(listing, entries)
    assert [f[:4] for f in read_entry_points(GROUP)] == [("hello", "alpha_steps:hello", "alpha", "1.0")]
    assert _hello() == {"from": "alpha"}


@pytest.mark.parametrize("text", ["[]", "null", '{"state": 1}', "{"])
def test_a_listing_that_is_not_an_object_is_ignored(site: Path, text: str) -> None:
    listing = _listing()
    listing.write_text(text)
    assert _hello() == {"from": "alpha"}
