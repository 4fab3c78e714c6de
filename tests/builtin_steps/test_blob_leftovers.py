"""What blob pulls leave behind: staging after a kill (removed next time, never pushed), and file modes (the umask's)."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from stepengine.builtin_steps import _blob_s3, blob
from tests.conftest import ROOT
from tests.fixtures.moto_server import S3Server

PULL_INTO_CWD = """\
pull:
  - pull_from_blob_storage:
      url: {url}
      directory: .
      concurrency: 1
      key: {key}
      secret: {secret}
      endpoint_url: {endpoint}
"""


def _staging(workdir: Path) -> list[Path]:
    return sorted(workdir.glob(".stepengine-pull.*"))


def _start_pull(yaml_file: Path, workdir: Path, home: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "STEPENGINE_HOME": str(home)}
    return subprocess.Popen(
        [sys.executable, "-m", "stepengine", "run", str(yaml_file), "--section", "pull", "-q"],
        cwd=workdir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for_staging(proc: subprocess.Popen[str], workdir: Path, files: int) -> Path:
    deadline = time.monotonic() + 60
    while True:
        found = [d for d in _staging(workdir) if sum(1 for _ in d.rglob("*.txt")) >= files]
        if found:
            return found[0]
        assert proc.poll() is None, f"the pull ended before it could be stopped: {proc.communicate()}"
        assert time.monotonic() < deadline, "the pull never got going"
        time.sleep(0.005)


def test_staging_of_a_killed_pull_is_never_pushed_and_removed_by_the_next_pull(
    moto_s3: S3Server, workdir: Path, tmp_path: Path
) -> None:
    """A `stepengine run` killed with SIGKILL mid-pull leaves its staging folder in the working directory:
    a push leaves it out; a pull while its owner still lives (stopped) keeps it; the next pull after the
    owner is gone removes it."""
    bucket = f"k-{uuid.uuid4().hex[:12]}"
    client = moto_s3.boto3_client()
    client.create_bucket(Bucket=bucket)
    objects = {f"proj/d{i % 4}/f{i:03}.txt": f"file {i}\n" for i in range(300)}
    for key, body in objects.items():
        client.put_object(Bucket=bucket, Key=key, Body=body.encode())
    url = f"s3://{bucket}/proj"
    yaml_file = tmp_path / "prefect.yaml"
    yaml_file.write_text(
        PULL_INTO_CWD.format(url=url, key=moto_s3.key, secret=moto_s3.secret, endpoint=moto_s3.endpoint_url)
    )
    (workdir / "mine.txt").write_text("the user's own file\n")
    home = tmp_path / "home"

    owner = _start_pull(yaml_file, workdir, home)
    try:
        staging = _wait_for_staging(owner, workdir, files=5)
        owner.send_signal(signal.SIGSTOP)  # alive, holding its staging folder
        # another pull into the same directory meanwhile: it must not take a live pull's staging for stale
        second = _start_pull(yaml_file, workdir, home)
        assert second.communicate(timeout=120)[1] == "" and second.returncode == 0
        assert _staging(workdir) == [staging]
        owner.kill()
        owner.wait(timeout=30)
    finally:
        if owner.poll() is None:
            owner.kill()
            owner.wait()
    assert owner.returncode == -signal.SIGKILL
    assert _staging(workdir) == [staging] and any(staging.rglob("*.txt"))  # what the killed run left

    pushed = blob.push_to_blob_storage(
        f"s3://{bucket}/pushed", directory=str(workdir), **moto_s3.s3fs_options()
    )
    keys = sorted(
        o["Key"]
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="pushed/")
        for o in page["Contents"]
    )
    assert keys == sorted(["pushed/mine.txt", *(k.replace("proj/", "pushed/", 1) for k in objects)])
    assert pushed["files"] == len(keys)

    third = _start_pull(yaml_file, workdir, home)
    assert third.communicate(timeout=120)[1] == "" and third.returncode == 0
    assert _staging(workdir) == []
    expected = {k.removeprefix("proj/"): v for k, v in objects.items()} | {
        "mine.txt": "the user's own file\n"
    }
    assert {
        p.relative_to(workdir).as_posix(): p.read_text() for p in workdir.rglob("*") if p.is_file()
    } == expected


def test_staging_folders_are_left_out_of_a_push_whatever_the_ignore_file_says(tmp_path: Path) -> None:
    project = tmp_path / "project"
    for rel in (
        "app.py",
        ".stepengine-pull.abc123/app.py",
        "sub/.stepengine-pull.x/y.txt",
        ".code.0a1b2c3d.tmp/f",
        ".code.0a1b2c3d.old/f",
        ".code.tmp/kept",
        "sub/.notes.12345678.txt",
    ):
        (project / rel).parent.mkdir(parents=True, exist_ok=True)
        (project / rel).write_text(rel)
    (project / ".prefectignore").write_text("!.stepengine-pull.*\n")
    remote = tmp_path / "remote"
    blob.push_to_blob_storage(remote.as_uri(), directory=str(project))
    pushed = sorted(p.relative_to(remote).as_posix() for p in remote.rglob("*") if p.is_file())
    assert pushed == [".code.tmp/kept", ".prefectignore", "app.py", "sub/.notes.12345678.txt"]


# --------------------------------------------------------------------------- file modes


@pytest.mark.parametrize("umask", [0o022, 0o077])
@pytest.mark.parametrize("into", ["own directory", "working directory"])
@pytest.mark.parametrize("scheme", ["file", "s3"])
def test_pulled_files_and_folders_have_the_modes_the_umask_gives(
    umask: int,
    into: str,
    scheme: str,
    moto_s3: S3Server,
    workdir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Like `cp -r` or `git clone`: folders 0777 and files 0666, less the umask (not 0700 whatever it is)."""
    files = {"top.txt": b"t", "a/b/deep.txt": b"d", "a/big.bin": os.urandom((1 << 20) + 5)}
    if scheme == "file":
        source = tmp_path / "source"
        for rel, body in files.items():
            (source / rel).parent.mkdir(parents=True, exist_ok=True)
            (source / rel).write_bytes(body)
        url, options = source.as_uri(), {}
    else:
        bucket = f"m-{uuid.uuid4().hex[:12]}"
        client = moto_s3.boto3_client()
        client.create_bucket(Bucket=bucket)
        for rel, body in files.items():
            client.put_object(Bucket=bucket, Key=f"proj/{rel}", Body=body)
        url, options = f"s3://{bucket}/proj", moto_s3.s3fs_options()
        monkeypatch.setattr(_blob_s3, "_RANGED_ABOVE", 1 << 20)  # big.bin comes in byte ranges
        monkeypatch.setattr(_blob_s3, "_PART", 1 << 19, raising=False)
    root = workdir / "code" if into == "own directory" else workdir
    previous = os.umask(umask)
    try:
        blob.pull_from_blob_storage(url, directory="code" if into == "own directory" else ".", **options)
    finally:
        os.umask(previous)
    modes = {
        p.relative_to(workdir).as_posix(): stat.S_IMODE(p.stat().st_mode) for p in [root, *root.rglob("*")]
    }
    folder, file = 0o777 & ~umask, 0o666 & ~umask
    prefix = "" if root == workdir else "code/"
    expected = {prefix + rel: file for rel in files} | {prefix + "a": folder, prefix + "a/b": folder}
    expected[root.relative_to(workdir).as_posix()] = (
        stat.S_IMODE(workdir.stat().st_mode) if root == workdir else folder
    )
    assert {rel: oct(mode) for rel, mode in modes.items()} == {
        rel: oct(mode) for rel, mode in expected.items()
    }
