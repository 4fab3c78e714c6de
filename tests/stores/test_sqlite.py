"""The embedded SQLite store: round trips, file modes, concurrent writers, damaged files."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from stepengine.errors import StoreError
from stepengine.masking import Masker, using_masker
from stepengine.stores.sqlite import SQLiteStore, default_path, make_block_data
from tests.fixtures.disks import fill as _fill
from tests.fixtures.disks import mounted as _mounted
from tests.fixtures.disks import tiny_disk as _tiny_disk


def test_default_path_is_under_stepengine_home(tmp_path: Path) -> None:
    assert default_path({"STEPENGINE_HOME": str(tmp_path)}) == tmp_path / "store.db"
    assert default_path({"HOME": "/x"}).name == "store.db"


def test_blocks_and_variables_round_trip(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "home" / "store.db")
    store.set_block("secret", "gh-token", make_block_data("secret", "ghp_abcdef"))
    store.set_block("json", "settings", make_block_data("json", {"a": [1, 2]}))
    store.set_block(
        "aws-credentials", "prod", {"aws_access_key_id": "AKIA", "aws_secret_access_key": "wJalr"}
    )
    store.set_variable("branch", "main")
    store.set_variable("replicas", 3)
    assert store.get_block("secret", "gh-token") == {"value": "ghp_abcdef"}
    assert store.get_block("json", "settings") == {"value": {"a": [1, 2]}}
    assert store.get_block("aws-credentials", "prod")["aws_secret_access_key"] == "wJalr"
    assert store.get_variable("branch") == "main"
    assert store.get_variable("replicas") == 3
    assert [i.name for i in store.list_blocks()] == [
        "aws-credentials/prod",
        "json/settings",
        "secret/gh-token",
    ]
    assert [(i.name, i.secret) for i in store.list_blocks("secret")] == [("secret/gh-token", True)]
    store.set_block("secret", "gh-token", {"value": "ghp_new"})  # replace
    assert store.get_block("secret", "gh-token") == {"value": "ghp_new"}
    assert store.delete_block("secret", "gh-token") is True
    assert store.delete_block("secret", "gh-token") is False
    with pytest.raises(LookupError):
        store.get_block("secret", "gh-token")
    assert store.delete_variable("branch") is True
    with pytest.raises(LookupError):
        store.get_variable("branch")


def test_a_read_never_creates_the_store(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "nothing" / "store.db")
    with pytest.raises(LookupError):
        store.get_block("secret", "x")
    assert store.list_variables() == []
    assert not (tmp_path / "nothing").exists()


def test_store_file_and_directory_are_private(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        store = SQLiteStore(tmp_path / "home" / "store.db")
        store.set_variable("x", "y")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "home").stat().st_mode) == 0o700
    for path in (tmp_path / "home").iterdir():  # store.db and any -wal / -shm file
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_an_existing_world_readable_store_is_made_private_on_write(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "store.db")
    store.set_variable("x", "y")
    os.chmod(store.path, 0o644)
    store.set_variable("x", "z")
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600


def test_secret_blocks_and_variables_are_masked_for_the_run_that_reads_them(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "store.db")
    store.set_block("secret", "tok", {"value": "tok-123456"})
    store.set_block("json", "conn", {"value": {"dsn": "postgres://u:pw-98765@db"}}, secret=True)
    store.set_variable("password", "var-secret-1", secret=True)
    store.set_variable("branch", "main-branch")
    run = Masker()
    with using_masker(run):
        store.get_block("secret", "tok")
        store.get_block("json", "conn")
        store.get_variable("password")
        store.get_variable("branch")
    assert (
        run.mask("tok-123456 postgres://u:pw-98765@db var-secret-1 main-branch") == "*** *** *** main-branch"
    )


def test_invalid_names_and_values_are_refused(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "store.db")
    with pytest.raises(
        ValueError, match=r"^block type 'Secret' is not valid: use lowercase letters, digits, '-' and '_'$"
    ):
        store.set_block("Secret", "x", {"value": "y"})
    with pytest.raises(
        ValueError, match=r"^block name 'a.b' is not valid: use letters, digits, '-' and '_'$"
    ):
        store.set_block("secret", "a.b", {"value": "y"})
    with pytest.raises(ValueError, match=r"^a secret block holds text, not dict$"):
        make_block_data("secret", {"a": 1})
    with pytest.raises(
        ValueError, match=r"^a github-credentials block holds a JSON object with its fields, not str$"
    ):
        make_block_data("github-credentials", "ghp")


def test_a_corrupt_store_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    path.write_bytes(b"this is not a database at all, just some bytes\n" * 200)
    store = SQLiteStore(path)
    with pytest.raises(StoreError) as info:
        store.get_block("secret", "x")
    assert str(info.value) == (
        f"{path}: not a usable stepengine store (file is not a database)\n"
        "hint: the file is damaged or is not a store: move it away, and set the blocks and variables again"
    )
    assert info.value.exit_code == 2
    with pytest.raises(StoreError):
        store.set_variable("x", "y")


def test_a_store_from_a_newer_version_is_refused(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "store.db"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    with pytest.raises(StoreError, match=r"this store was written by a newer stepengine \(layout 99"):
        SQLiteStore(path).get_variable("x")


_WRITER = """
import sys
from stepengine.stores.sqlite import SQLiteStore
store = SQLiteStore(sys.argv[1], timeout=60)
worker = sys.argv[2]
for i in range(int(sys.argv[3])):
    store.set_block("secret", f"w{worker}-{i}", {"value": f"value-{worker}-{i}"})
    store.set_variable(f"v{worker}-{i}", i)
    store.get_variable(f"v{worker}-{i}")
"""


def test_concurrent_writers_from_several_processes_lose_nothing(tmp_path: Path) -> None:
    """Several processes create the store and write to it at the same time: every write lands."""
    path = tmp_path / "home" / "store.db"
    workers, count = 6, 30
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(path), str(w), str(count)], stderr=subprocess.PIPE
        )
        for w in range(workers)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()
    store = SQLiteStore(path)
    assert len(store.list_blocks()) == workers * count
    assert len(store.list_variables()) == workers * count
    assert store.get_block("secret", f"w{workers - 1}-{count - 1}") == {
        "value": f"value-{workers - 1}-{count - 1}"
    }


# -- a store that cannot be written: say why, never advise moving a healthy store away (issue 14) ----


def _cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "STEPENGINE_HOME": str(home), "PYTHONPATH": str(root)}
    return subprocess.run(
        [sys.executable, "-m", "stepengine", *args], env=env, capture_output=True, text=True, timeout=60
    )


def test_a_full_disk_is_reported_as_a_full_disk(tmp_path: Path) -> None:
    with _tiny_disk(tmp_path / "disk") as disk:
        store = SQLiteStore(disk / "store.db")
        store.set_block("secret", "kept", {"value": "abcdef"})
        _fill(disk)
        with pytest.raises(StoreError) as info:
            store.set_block("string", "big", {"value": "x" * 100_000})
        assert str(info.value).startswith(f"{disk / 'store.db'}: the disk holding the store is full (")
        assert (
            info.value.hint
            == "free some space and try again; the store is intact (an unfinished write is rolled back)"
        )
        assert "move it away" not in str(info.value)
        done = _cli(disk, "block", "set", "string/big", "--value", "x" * 50_000)
        assert done.returncode == 2
        assert "the disk holding the store is full" in done.stderr and "move it away" not in done.stderr
        (disk / "filler").unlink()
        assert store.get_block("secret", "kept") == {"value": "abcdef"}  # following the advice loses nothing
        store.set_block("string", "big", {"value": "x" * 100_000})


def test_a_store_cannot_be_created_on_a_full_disk(tmp_path: Path) -> None:
    with _tiny_disk(tmp_path / "disk") as disk:
        _fill(disk)
        done = _cli(disk / "home", "block", "set", "secret/x", "--value", "abcdef")
        assert done.returncode == 2, done.stderr
        assert "the disk holding the store is full" in done.stderr


def test_a_read_only_home(tmp_path: Path) -> None:
    home = tmp_path / "home"
    target = str(home)
    with _mounted(home, ["mount", "--bind", target, target], ["mount", "-o", "remount,bind,ro", target]):
        for where in (home, home / "sub"):
            done = _cli(where, "block", "set", "secret/x", "--value", "abcdef")
            assert done.returncode == 2, done.stderr
            assert done.stderr.startswith(f"error: {where / 'store.db'}: cannot create the store: ")
            assert "Read-only file system" in done.stderr
            assert (
                f"hint: {where} must be writable by you (or point STEPENGINE_HOME elsewhere)" in done.stderr
            )
            assert "Traceback" not in done.stderr


def test_a_store_path_that_is_a_directory(tmp_path: Path) -> None:
    (tmp_path / "store.db").mkdir()
    for args in (
        ("block", "set", "secret/x", "--value", "abcdef"),
        ("block", "get", "secret/x"),
        ("variable", "ls"),
    ):
        done = _cli(tmp_path, *args)
        assert (done.returncode, done.stderr) == (
            2,
            f"error: {tmp_path / 'store.db'}: is a directory, not a store file\n"
            "hint: move it away, or point STEPENGINE_HOME elsewhere\n",
        ), args


@pytest.mark.parametrize("mode", [0o620, 0o602, 0o666])
def test_a_store_writable_by_others_is_not_used(tmp_path: Path, mode: int) -> None:
    """Its blocks and variables decide what a run does: one anybody could have written is refused."""
    store = SQLiteStore(tmp_path / "store.db")
    store.set_variable("repository", "https://example.invalid/mine.git")
    os.chmod(store.path, mode)
    for call in (
        lambda: store.get_variable("repository"),
        lambda: store.set_variable("x", "y"),
        store.list_variables,
    ):
        with pytest.raises(StoreError) as info:
            call()
        assert str(info.value) == (
            f"{store.path}: the store is writable by others (mode {mode:o}): not used, since its blocks and "
            f"variables decide what a run does\nhint: if you trust its content: chmod 600 {store.path}"
        )
    os.chmod(store.path, 0o600)
    assert store.get_variable("repository") == "https://example.invalid/mine.git"


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file another owner needs root")
def test_a_store_owned_by_someone_else_is_not_used(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "store.db")
    store.set_variable("repository", "https://example.invalid/planted.git")
    os.chown(store.path, 54321, -1)
    with pytest.raises(StoreError, match=r"the store belongs to another user \(uid 54321\): not used"):
        store.get_variable("repository")
    done = _cli(tmp_path, "variable", "get", "repository")
    assert done.returncode == 2 and "belongs to another user" in done.stderr
