"""Many runs on one host (issue 16 item 3): processes pulling the same bucket at once, sharing one
``$STEPENGINE_HOME``, each get a correct target, and the blob manifests they leave are whole and
usable (a second round transfers nothing)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT
from tests.fixtures.moto_server import S3Server

PROCESSES = 4
OBJECTS = {f"code/d{i % 5}/f{i:03d}.txt": f"object {i} ".encode() * (1 + i % 7) for i in range(40)}

PULL = """
import json, sys
from stepengine.builtin_steps.blob import pull_from_blob_storage
out = pull_from_blob_storage(
    sys.argv[1], directory=".", key=sys.argv[2], secret=sys.argv[3], endpoint_url=sys.argv[4]
)
print(json.dumps(out))
"""


def _pull_all(moto_s3: S3Server, targets: list[Path], home: Path) -> list[dict[str, int]]:
    """Start one process per target at once (one shared home), wait for all; their outputs."""
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "STEPENGINE_HOME": str(home),
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    argv = [
        sys.executable,
        "-c",
        PULL,
        "s3://shared-pulls/code",
        moto_s3.key,
        moto_s3.secret,
        moto_s3.endpoint_url,
    ]
    procs = [
        subprocess.Popen(argv, cwd=target, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for target in targets
    ]
    outputs = []
    for proc in procs:
        out, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, err.decode()
        outputs.append(json.loads(out.decode().strip().splitlines()[-1]))
    return outputs


def test_concurrent_pulls_of_one_bucket_share_a_home_safely(moto_s3: S3Server, tmp_path: Path) -> None:
    client = moto_s3.boto3_client()
    client.create_bucket(Bucket="shared-pulls")
    for key, body in OBJECTS.items():
        client.put_object(Bucket="shared-pulls", Key=key, Body=body)
    home = tmp_path / "home"
    targets = [tmp_path / f"run-{n}" for n in range(PROCESSES)]
    for target in targets:
        target.mkdir()

    first = _pull_all(moto_s3, targets, home)
    assert [o["transferred"] for o in first] == [len(OBJECTS)] * PROCESSES
    for target in targets:  # every target holds exactly the bucket's objects, byte for byte
        files = {p.relative_to(target).as_posix(): p.read_bytes() for p in target.rglob("*") if p.is_file()}
        assert files == {key.removeprefix("code/"): body for key, body in OBJECTS.items()}, target

    manifests = sorted((home / "blob-manifests").iterdir())
    assert [p.suffix for p in manifests] == [".json"] * PROCESSES  # one per target, no leftover temp file
    recorded = [json.loads(p.read_text()) for p in manifests]
    assert sorted(m["directory"] for m in recorded) == sorted(str(t) for t in targets)
    assert all(m["files"].keys() == {k.removeprefix("code/") for k in OBJECTS} for m in recorded)

    # the manifests are each run's own and usable: at once again, nothing is transferred
    again = _pull_all(moto_s3, targets, home)
    assert [o["transferred"] for o in again] == [0] * PROCESSES
