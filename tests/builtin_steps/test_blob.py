"""Blob-storage steps against real servers on 127.0.0.1 (moto S3, Azurite, gcp-storage-emulator), file:// and memory://."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import typing as t
import uuid
from pathlib import Path

import boto3
import pytest

from stepengine.builtin_steps import blob
from stepengine.step_api import StepError
from tests.conftest import ROOT
from tests.fixtures.azurite import AzuriteServer
from tests.fixtures.gcs_emulator import GCSServer
from tests.fixtures.moto_server import S3Server

PROJECT = {
    "flows/main.py": "print('hello')\n",
    "flows/util/helpers.py": "X = 1\n",
    "requirements.txt": "requests\n",
    "keep.log": "kept by a negated pattern\n",
    "debug.log": "ignored\n",
    "build/out.bin": "ignored folder\n",
    "data/big.csv": "ignored by a path pattern\n",
    ".prefectignore": "*.log\n!keep.log\nbuild/\ndata/*.csv\n",
}
PUSHED = {k: v for k, v in PROJECT.items() if k not in {"debug.log", "build/out.bin", "data/big.csv"}}


def write_tree(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def read_tree(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): p.read_text() for p in sorted(root.rglob("*")) if p.is_file()}


def listing(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*"))


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return write_tree(tmp_path / "project", PROJECT)


@pytest.fixture
def bucket(moto_s3: S3Server) -> str:
    name = f"b-{uuid.uuid4().hex[:12]}"
    moto_s3.boto3_client().create_bucket(Bucket=name)
    return name


def put_objects(server: S3Server, bucket: str, objects: dict[str, bytes]) -> None:
    client = server.boto3_client()
    for key, body in objects.items():
        client.put_object(Bucket=bucket, Key=key, Body=body)


def aws_block(server: S3Server) -> dict[str, object]:
    """What `{{ prefect.blocks.aws-credentials.x }}` resolves to for this server."""
    return {
        "aws_access_key_id": server.key,
        "aws_secret_access_key": server.secret,
        "region_name": "us-east-1",
        "aws_client_parameters": {"endpoint_url": server.endpoint_url},
    }


# --------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("scheme", ["memory", "file"])
def test_push_then_pull_round_trip_honours_ignore_file(
    scheme: str, project: Path, workdir: Path, tmp_path: Path
) -> None:
    """Ignored files (glob, negation, folder, path pattern) are not pushed; the pull restores the rest."""
    url = f"memory://rt-{uuid.uuid4().hex[:8]}/code" if scheme == "memory" else (tmp_path / "remote").as_uri()
    pushed = blob.push_to_blob_storage(url, directory=str(project))
    assert pushed == {"url": url, "files": len(PUSHED), "bytes": sum(len(v) for v in PUSHED.values())}

    pulled = blob.pull_from_blob_storage(url, directory="code")
    assert pulled == {
        "directory": "code",
        "url": url,
        "files": len(PUSHED),
        "bytes": pushed["bytes"],
        "transferred": len(PUSHED),
    }
    assert read_tree(workdir / "code") == PUSHED


def test_s3_round_trip_with_ignore_patterns(
    moto_s3: S3Server, bucket: str, project: Path, workdir: Path
) -> None:
    url = f"s3://{bucket}/proj"
    pushed = blob.push_to_blob_storage(url, directory=str(project), **moto_s3.s3fs_options())
    assert pushed["files"] == len(PUSHED)
    keys = sorted(o["Key"] for o in moto_s3.boto3_client().list_objects_v2(Bucket=bucket)["Contents"])
    assert keys == sorted(f"proj/{k}" for k in PUSHED)

    out = blob.pull_from_blob_storage(url, credentials=aws_block(moto_s3))
    assert out["directory"] == f"{bucket}/proj"
    assert read_tree(workdir / bucket / "proj") == PUSHED


def test_gcs_round_trip(gcs_emulator: GCSServer, project: Path, workdir: Path) -> None:
    url = f"gs://{gcs_emulator.bucket}/rt-{uuid.uuid4().hex[:8]}"
    options = {"endpoint_url": gcs_emulator.endpoint_url, "token": "anon", "project": "test"}
    assert blob.push_to_blob_storage(url, directory=str(project), **options)["files"] == len(PUSHED)
    out = blob.pull_from_blob_storage(url, directory="out", **options)
    assert (out["files"], out["transferred"]) == (len(PUSHED), len(PUSHED))
    assert read_tree(workdir / "out") == PUSHED


def test_azure_round_trip_and_repull(azurite: AzuriteServer, project: Path, workdir: Path) -> None:
    container = f"c{uuid.uuid4().hex[:10]}"
    import adlfs

    adlfs.AzureBlobFileSystem(connection_string=azurite.connection_string).mkdir(container)
    creds = {"connection_string": azurite.connection_string}
    blob.push_to_blob_storage(f"az://{container}/proj", directory=str(project), credentials=creds)
    out = blob.pull_from_blob_storage(container=container, folder="proj", credentials=creds)
    assert (out["url"], out["directory"], out["transferred"]) == (
        f"az://{container}/proj",
        f"{container}/proj",
        len(PUSHED),
    )
    assert read_tree(workdir / container / "proj") == PUSHED
    again = blob.pull_from_blob_storage(container=container, folder="proj", credentials=creds)
    assert again["transferred"] == 0


# --------------------------------------------------------------------------- Prefect-named steps


def test_prefect_s3_steps_produce_prefect_outputs(
    moto_s3: S3Server, bucket: str, project: Path, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """push_to_s3 uploads the cwd; pull_from_s3 merges into the cwd and returns Prefect's three keys."""
    monkeypatch.chdir(project)
    creds = {"aws_access_key_id": moto_s3.key, "aws_secret_access_key": moto_s3.secret}
    params = {"endpoint_url": moto_s3.endpoint_url}
    assert blob.push_to_s3(bucket, "proj", credentials=creds, client_parameters=params) == {
        "bucket": bucket,
        "folder": "proj",
    }

    monkeypatch.chdir(workdir)
    (workdir / "local-only.txt").write_text("untouched")
    out = blob.pull_from_s3(bucket, "proj", credentials=creds, client_parameters=params)
    assert out == {"bucket": bucket, "folder": "proj", "directory": str(workdir)}
    assert read_tree(workdir) == {**PUSHED, "local-only.txt": "untouched"}
    assert not [p for p in workdir.iterdir() if p.name.startswith(".stepengine-pull")]


def test_pull_from_remote_storage_returns_netloc_path(moto_s3: S3Server, bucket: str, workdir: Path) -> None:
    put_objects(moto_s3, bucket, {"team/app/flow.py": b"x = 1\n", "team/app/pkg/__init__.py": b""})
    out = blob.pull_from_remote_storage(f"s3://{bucket}/team/app", requires="s3fs", **moto_s3.s3fs_options())
    assert out == {"directory": f"{bucket}/team/app"}
    assert read_tree(workdir / bucket / "team" / "app") == {"flow.py": "x = 1\n", "pkg/__init__.py": ""}


def test_prefect_gcs_steps_use_the_storage_emulator_host(
    gcs_emulator: GCSServer, project: Path, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Prefect's GCS steps take no endpoint: like google-cloud-storage, gcsfs honours STORAGE_EMULATOR_HOST."""
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_emulator.endpoint_url)
    folder = f"pf-{uuid.uuid4().hex[:8]}"
    monkeypatch.chdir(project)
    assert blob.push_to_gcs(gcs_emulator.bucket, folder, project="test") == {
        "bucket": gcs_emulator.bucket,
        "folder": folder,
    }
    monkeypatch.chdir(workdir)
    out = blob.pull_from_gcs(gcs_emulator.bucket, folder, project="test")
    assert out == {"bucket": gcs_emulator.bucket, "folder": folder, "directory": str(workdir)}
    assert read_tree(workdir) == PUSHED


def test_prefect_azure_steps_produce_prefect_outputs(
    azurite: AzuriteServer, project: Path, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import adlfs

    container = f"c{uuid.uuid4().hex[:10]}"
    adlfs.AzureBlobFileSystem(connection_string=azurite.connection_string).mkdir(container)
    creds = {"connection_string": azurite.connection_string}
    monkeypatch.chdir(project)
    assert blob.push_to_azure_blob_storage(container, "f", creds) == {"container": container, "folder": "f"}
    monkeypatch.chdir(workdir)
    out = blob.pull_from_azure_blob_storage(container, "f", creds)
    assert out == {"container": container, "folder": "f", "directory": str(workdir)}
    assert read_tree(workdir) == PUSHED
    with pytest.raises(StepError) as info:
        blob.pull_from_azure_blob_storage(container, "f", {})
    assert str(info.value) == "Azure credentials must contain either connection_string or account_url"


# --------------------------------------------------------------------------- safety


@pytest.mark.parametrize(
    ("key", "problem"),
    [
        ("proj/../evil.py", "has a '..' segment"),
        ("proj//etc/cron.d/evil", "is an absolute path"),
        ("proj/a\\..\\..\\evil", "contains a backslash"),
        ("proj/sub/./x", "has an empty or '.' segment"),
    ],
)
def test_unsafe_keys_are_rejected_before_anything_is_written(
    moto_s3: S3Server, bucket: str, workdir: Path, key: str, problem: str
) -> None:
    put_objects(moto_s3, bucket, {"proj/fine.txt": b"ok", key: b"evil"})
    rel = key.removeprefix("proj/")
    with pytest.raises(StepError) as info:
        blob.pull_from_blob_storage(f"s3://{bucket}/proj", **moto_s3.s3fs_options())
    assert str(info.value) == (
        f"refusing to pull s3://{bucket}/proj: object key {rel!r} {problem}; nothing was written\n"
        "hint: rename or delete that object in the bucket"
    )
    assert listing(workdir) == []
    with pytest.raises(StepError):  # the Prefect-named step merges into the cwd: still nothing written
        blob.pull_from_s3(
            bucket,
            "proj",
            client_parameters={"endpoint_url": moto_s3.endpoint_url},
            credentials={"aws_access_key_id": moto_s3.key, "aws_secret_access_key": moto_s3.secret},
        )
    assert listing(workdir) == []


def test_object_that_is_also_a_folder_is_rejected(moto_s3: S3Server, bucket: str, workdir: Path) -> None:
    put_objects(moto_s3, bucket, {"p/a/b": b"file a/b", "p/a/b/c.txt": b"file under folder a/b"})
    url = f"s3://{bucket}/p"
    with pytest.raises(StepError) as info:
        blob.pull_from_blob_storage(url, directory="out", **moto_s3.s3fs_options())
    assert str(info.value) == (
        f"refusing to pull {url}: 'a/b' is both an object and a folder of other objects; "
        "nothing was written\nhint: rename or delete that object in the bucket"
    )
    assert listing(workdir) == []


def test_merge_pull_does_not_follow_a_symlink_out_of_the_cwd(workdir: Path, tmp_path: Path) -> None:
    """pull_from_s3 & co. write into the cwd: a symlinked folder there must not lead the files elsewhere."""
    import fsspec

    outside = tmp_path / "outside"
    outside.mkdir()
    (workdir / "sub").symlink_to(outside)
    url = f"memory://sym-{uuid.uuid4().hex[:8]}"
    fsspec.filesystem("memory").pipe(url.removeprefix("memory:/") + "/sub/x.txt", b"x")
    with pytest.raises(StepError) as info:
        blob.pull_from_blob_storage(url, directory=".")
    assert str(info.value) == f"refusing unsafe path 'sub': it resolves outside {workdir.resolve()}"
    assert list(outside.iterdir()) == [] and listing(workdir) == ["sub"]


def _restricted_user(server: S3Server, bucket: str, denied_key: str) -> dict[str, str]:
    """An IAM user that may list the bucket but not read ``denied_key``: a real mid-transfer failure."""
    iam = boto3.client(
        "iam",
        endpoint_url=server.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id=server.key,
        aws_secret_access_key=server.secret,
    )
    name = f"u{uuid.uuid4().hex[:8]}"
    iam.create_user(UserName=name)
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "s3:*", "Resource": "*"},
            {"Effect": "Deny", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/{denied_key}"},
        ],
    }
    iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=json.dumps(policy))
    created = iam.create_access_key(UserName=name)["AccessKey"]
    return {
        "key": created["AccessKeyId"],
        "secret": created["SecretAccessKey"],
        "endpoint_url": server.endpoint_url,
    }


def test_failed_pull_keeps_the_previous_directory(moto_s3: S3Server, bucket: str, workdir: Path) -> None:
    objects = {f"proj/f{i:02}.txt": f"v1 {i}".encode() for i in range(20)}
    put_objects(moto_s3, bucket, objects)
    blob.pull_from_blob_storage(f"s3://{bucket}/proj", directory="code", **moto_s3.s3fs_options())
    before = read_tree(workdir / "code")

    put_objects(moto_s3, bucket, {k: v.replace(b"v1", b"v2") for k, v in objects.items()})
    options = _restricted_user(moto_s3, bucket, "proj/f13.txt")
    with pytest.raises(StepError) as info:
        blob.pull_from_blob_storage(f"s3://{bucket}/proj", directory="code", **options)
    assert str(info.value) == (
        f"access denied while pulling s3://{bucket}/proj: Access Denied\n"
        "hint: check the credentials and that they may read/write this location"
    )
    assert read_tree(workdir / "code") == before
    assert listing(workdir) == ["code", *(f"code/f{i:02}.txt" for i in range(20))]  # no temporary leftovers


def test_failed_merge_pull_writes_nothing_into_the_cwd(moto_s3: S3Server, bucket: str, workdir: Path) -> None:
    put_objects(moto_s3, bucket, {"proj/a.txt": b"new a", "proj/b.txt": b"new b"})
    (workdir / "a.txt").write_text("old a")
    options = _restricted_user(moto_s3, bucket, "proj/b.txt")
    with pytest.raises(StepError):
        blob.pull_from_s3(
            bucket,
            "proj",
            credentials={"aws_access_key_id": options["key"], "aws_secret_access_key": options["secret"]},
            client_parameters={"endpoint_url": moto_s3.endpoint_url},
        )
    assert read_tree(workdir) == {"a.txt": "old a"}
    assert listing(workdir) == ["a.txt"]


INTERRUPTED_PULL = """
import os, sys
from stepengine.builtin_steps import blob
blob.pull_from_blob_storage(sys.argv[1], directory="out", concurrency=1, key=os.environ["K"], secret=os.environ["S"],
                            endpoint_url=os.environ["E"])
"""


def test_interrupted_pull_keeps_the_previous_directory(
    moto_s3: S3Server, bucket: str, workdir: Path, tmp_path: Path
) -> None:
    """SIGINT in the middle of the downloads: the old directory stays, the temporary one is removed."""
    source = write_tree(tmp_path / "src", {f"f{i:03}.txt": f"v2 {i}" for i in range(300)})
    url = f"s3://{bucket}/big"
    blob.push_to_blob_storage(url, directory=str(source), **moto_s3.s3fs_options())
    write_tree(workdir / "out", {"old.txt": "previous pull"})
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "K": moto_s3.key,
        "S": moto_s3.secret,
        "E": moto_s3.endpoint_url,
    }
    proc = subprocess.Popen(
        [sys.executable, "-c", INTERRUPTED_PULL, url],
        cwd=workdir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not any(len(list(d.iterdir())) >= 5 for d in workdir.glob(".out.*.tmp")):
            assert proc.poll() is None and time.monotonic() < deadline, "the pull never got going"
            time.sleep(0.01)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0 and "KeyboardInterrupt" in stderr
    assert listing(workdir) == ["out", "out/old.txt"]


class _TruncatingProxy:
    """A real HTTP proxy in front of moto that serves the first download of chosen keys cut in half.

    The truncated response is well-formed (its Content-Length matches), so HTTP alone cannot notice
    it: a checksum or the step's size check against the listing must, and the step's retry repairs it.
    """

    def __init__(self, upstream: str, flaky_paths: set[str]) -> None:
        import http.client
        import http.server
        import threading
        from urllib.parse import urlsplit

        self.hits: dict[str, int] = {}
        proxy = self
        target = urlsplit(upstream)

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                conn = http.client.HTTPConnection(target.hostname, target.port, timeout=30)
                conn.request("GET", self.path, headers=dict(self.headers))
                response = conn.getresponse()
                body = response.read()
                path = self.path.split("?", 1)[0]
                proxy.hits[path] = proxy.hits.get(path, 0) + 1
                if path in flaky_paths and proxy.hits[path] == 1 and response.status == 200:
                    body = body[: len(body) // 2]
                self.send_response(response.status)
                for name, value in response.getheaders():
                    if name.lower() not in (
                        "content-length",
                        "transfer-encoding",
                        "connection",
                        "date",
                        "server",
                    ):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up on a failed transfer
                conn.close()

            def log_message(self, *args: t.Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize("checksums", ["when_supported", "when_required"])
def test_truncated_download_is_detected_and_retried(
    moto_s3: S3Server, bucket: str, workdir: Path, checksums: str
) -> None:
    """With botocore's checksum validation on, it catches the short body; with it off, the size check does."""
    config = {"config_kwargs": {"response_checksum_validation": checksums}}
    objects = {f"proj/f{i}.txt": (f"{i}" * 1000).encode() for i in range(6)}
    put_objects(moto_s3, bucket, objects)
    flaky = {f"/{bucket}/proj/f2.txt", f"/{bucket}/proj/f4.txt"}
    proxy = _TruncatingProxy(moto_s3.endpoint_url, flaky)
    try:
        with pytest.raises(StepError) as info:  # without retries the short body is caught, not kept
            blob.pull_from_blob_storage(
                f"s3://{bucket}/proj",
                directory="code",
                retries=0,
                key=moto_s3.key,
                secret=moto_s3.secret,
                endpoint_url=proxy.url,
                **config,
            )
    finally:
        proxy.close()
    if checksums == "when_supported":
        expected = r"FlexibleChecksumError: Expected checksum \S+ did not match calculated checksum: \S+"
    else:
        expected = r"OSError: \S+/f[24]\.txt: got 500 bytes, the listing said 1000"
    assert re.fullmatch(rf"pulling s3://{bucket}/proj failed: {expected}", str(info.value))
    assert listing(workdir) == []

    proxy = _TruncatingProxy(moto_s3.endpoint_url, flaky)
    try:
        out = blob.pull_from_blob_storage(
            f"s3://{bucket}/proj",
            directory="code",
            key=moto_s3.key,
            secret=moto_s3.secret,
            endpoint_url=proxy.url,
            **config,
        )
    finally:
        proxy.close()
    assert out["transferred"] == 6
    assert read_tree(workdir / "code") == {k.removeprefix("proj/"): v.decode() for k, v in objects.items()}
    assert {path: proxy.hits[path] for path in flaky} == {path: 2 for path in flaky}


def test_wrong_credentials_fail_at_once_without_the_secret(
    moto_s3: S3Server, bucket: str, workdir: Path
) -> None:
    put_objects(moto_s3, bucket, {"proj/a.txt": b"a"})
    wrong = "WrongSecretValue1234567890"
    proxy = _TruncatingProxy(moto_s3.endpoint_url, flaky_paths=set())  # here only to count requests
    try:
        with pytest.raises(StepError) as info:
            blob.pull_from_blob_storage(
                f"s3://{bucket}/proj", key=moto_s3.key, secret=wrong, endpoint_url=proxy.url
            )
    finally:
        proxy.close()
    assert sum(proxy.hits.values()) == 1  # one refused listing, no retries
    message = str(info.value)
    assert message == (
        f"access denied while listing s3://{bucket}/proj: The request signature we calculated does not match the "
        "signature you provided. Check your key and signing method.\n"
        "hint: check the credentials and that they may read/write this location"
    )
    assert wrong not in message and wrong not in repr(info.value.args)
    assert listing(workdir) == []


def test_wrong_azure_account_key_fails_at_once(azurite: AzuriteServer, project: Path, workdir: Path) -> None:
    """Azure's SDK raises HttpResponseError(403), not PermissionError: it must still count as 'denied'."""
    import adlfs

    from tests.fixtures.azurite import ACCOUNT_KEY

    container = f"c{uuid.uuid4().hex[:10]}"
    adlfs.AzureBlobFileSystem(connection_string=azurite.connection_string).mkdir(container)
    blob.push_to_blob_storage(
        f"az://{container}/p",
        directory=str(project),
        credentials={"connection_string": azurite.connection_string},
    )
    wrong_key = "d3Jvbmd3cm9uZ3dyb25nd3Jvbmd3cm9uZ3dyb25nd3Jvbmc="
    wrong = azurite.connection_string.replace(ACCOUNT_KEY, wrong_key)
    started = time.monotonic()
    with pytest.raises(StepError) as info:
        blob.pull_from_azure_blob_storage(container, "p", {"connection_string": wrong})
    assert time.monotonic() - started < 1.3  # no retries: their backoff alone would add 1.4 s
    assert str(info.value) == (
        f"access denied while listing az://{container}/p: Server failed to authenticate the request. Make sure the "
        "value of the Authorization header is formed correctly including the signature.\n"
        "hint: check the credentials and that they may read/write this location"
    )
    assert wrong_key not in str(info.value) and listing(workdir) == []


def test_unknown_access_key_is_reported(
    moto_s3: S3Server, bucket: str, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(project)
    with pytest.raises(StepError) as info:
        blob.push_to_s3(
            bucket,
            "proj",
            credentials={
                "aws_access_key_id": "AKIANOTAREALKEY00000",
                "aws_secret_access_key": "nope-nope-nope",
            },
            client_parameters={"endpoint_url": moto_s3.endpoint_url},
        )
    assert str(info.value) == (
        f"access denied while pushing s3://{bucket}/proj: The AWS Access Key Id you provided does not exist in our "
        "records.\nhint: check the credentials and that they may read/write this location"
    )
    assert "nope-nope-nope" not in str(info.value)


def test_caps_refuse_before_downloading(moto_s3: S3Server, bucket: str, workdir: Path) -> None:
    put_objects(moto_s3, bucket, {f"p/{i}": b"12345" for i in range(3)})
    url = f"s3://{bucket}/p"
    with pytest.raises(StepError) as info:
        blob.pull_from_blob_storage(url, max_files=2, **moto_s3.s3fs_options())
    assert (
        str(info.value)
        == f"refusing to pull {url}: 3 objects exceed max_files=2\nhint: check the URL, or raise max_files"
    )
    with pytest.raises(StepError) as info:
        blob.pull_from_blob_storage(url, max_bytes=14, **moto_s3.s3fs_options())
    assert (
        str(info.value)
        == f"refusing to pull {url}: 15 bytes exceed max_bytes=14\nhint: check the URL, or raise max_bytes"
    )
    assert listing(workdir) == []


def test_empty_or_missing_location_is_an_error(moto_s3: S3Server, bucket: str, workdir: Path) -> None:
    with pytest.raises(StepError) as info:
        blob.pull_from_blob_storage(f"s3://{bucket}/nothing-here", **moto_s3.s3fs_options())
    assert (
        str(info.value)
        == f"nothing to pull: no objects under s3://{bucket}/nothing-here\nhint: check the bucket and folder names"
    )
    with pytest.raises(StepError) as info:
        blob.pull_from_blob_storage("s3://no-such-bucket-x/p", **moto_s3.s3fs_options())
    assert str(info.value) == (
        "not found while listing s3://no-such-bucket-x/p: The specified bucket does not exist\n"
        "hint: check the bucket and folder names"
    )


def test_push_does_not_follow_symlinks_out_of_the_project(project: Path, tmp_path: Path) -> None:
    secret = tmp_path / "credentials"
    secret.write_text("aws_secret_access_key=abc")
    (project / "creds").symlink_to(secret)
    (project / "inside").symlink_to(project / "requirements.txt")
    url = f"memory://sym-{uuid.uuid4().hex[:8]}"
    out = blob.push_to_blob_storage(url, directory=str(project), ignore_file=None)
    import fsspec

    names = sorted(
        p.rsplit("/", 1)[-1] for p in fsspec.filesystem("memory").find(url.removeprefix("memory:/"))
    )
    assert "creds" not in names and "inside" in names
    assert out["files"] == len(PROJECT) + 1


@pytest.mark.parametrize(
    ("url", "module", "extra"),
    [("s3://b/f", "s3fs", "s3"), ("gs://b/f", "gcsfs", "gcs"), ("az://c/f", "adlfs", "azure")],
)
def test_missing_backend_names_the_pip_install(
    url: str, module: str, extra: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The backend is made unimportable (sys.modules entry None), as when the extra is not installed."""
    monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(StepError) as info:
        blob.pull_from_blob_storage(url)
    scheme = url.split(":")[0]
    assert (
        str(info.value)
        == f"{scheme}:// storage needs {module}, which is not installed\nhint: pip install 'stepengine[{extra}]'"
    )


def test_location_forms(workdir: Path) -> None:
    with pytest.raises(StepError) as info:
        blob.pull_from_blob_storage(container="c", folder="f")
    assert (
        str(info.value)
        == "cannot tell which storage service holds container 'c'\nhint: add protocol: s3, gs or az (or use url: s3://bucket/folder)"
    )
    with pytest.raises(StepError) as info:
        blob.pull_from_blob_storage("bucket/folder")
    assert (
        str(info.value)
        == "'bucket/folder' is not a storage URL\nhint: write it as protocol://bucket/folder, e.g. s3://b/f"
    )
    url = f"memory://forms-{uuid.uuid4().hex[:8]}"
    import fsspec

    fsspec.filesystem("memory").pipe(url.removeprefix("memory:/") + "/f/x.txt", b"x")
    out = blob.pull_from_blob_storage(container=url.removeprefix("memory://"), folder="f", protocol="memory")
    assert out["url"] == url + "/f" and read_tree(workdir / out["directory"]) == {"x.txt": "x"}


# --------------------------------------------------------------------------- speed: re-pull


def test_repull_of_unchanged_objects_transfers_nothing(moto_s3: S3Server, bucket: str, workdir: Path) -> None:
    put_objects(moto_s3, bucket, {f"proj/d{i % 3}/f{i}.txt": f"content {i}".encode() for i in range(30)})
    url = f"s3://{bucket}/proj"
    first = blob.pull_from_blob_storage(url, **moto_s3.s3fs_options())
    assert first["transferred"] == 30
    target = workdir / bucket / "proj"
    inode = (target / "d0/f0.txt").stat().st_ino

    again = blob.pull_from_blob_storage(url, **moto_s3.s3fs_options())
    assert (again["files"], again["transferred"]) == (30, 0)
    assert (target / "d0/f0.txt").stat().st_ino == inode  # the very same file, not a new download

    (target / "stray.txt").write_text("not in the bucket")
    swept = blob.pull_from_blob_storage(url, **moto_s3.s3fs_options())
    assert (
        swept["transferred"] == 0 and not (target / "stray.txt").exists()
    )  # the directory mirrors the bucket
    assert (target / "d0/f0.txt").stat().st_ino == inode

    put_objects(moto_s3, bucket, {"proj/d1/f1.txt": b"changed remotely"})
    (target / "d2/f2.txt").write_text("edited locally")
    third = blob.pull_from_blob_storage(url, **moto_s3.s3fs_options())
    assert third["transferred"] == 2
    assert (target / "d1/f1.txt").read_text() == "changed remotely"
    assert (target / "d2/f2.txt").read_text() == "content 2"


def test_moto_fixture_works_outside_pytest() -> None:
    """The benchmark reuses ``start_moto_server`` as a plain context manager."""
    code = (
        "from testkit.moto_server import start_moto_server\n"
        "with start_moto_server(check_credentials=False) as s:\n"
        "    c = s.boto3_client(); c.create_bucket(Bucket='bench'); c.put_object(Bucket='bench', Key='k', Body=b'v')\n"
        "    print(c.get_object(Bucket='bench', Key='k')['Body'].read().decode(), s.endpoint_url.startswith('http://127.0.0.1:'))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert (result.returncode, result.stdout) == (0, "v True\n"), result.stderr


# --------------------------------------------------------------------------- end to end through the engine

PREFECT_YAML = """\
name: blob-e2e
prefect-version: 3.0.0
push:
  - prefect_aws.deployments.steps.push_to_s3:
      id: push_code
      requires: prefect-aws>=0.3.4
      bucket: "{{ bucket }}"
      folder: my-project
      credentials: "{{ prefect.blocks.aws-credentials.dev }}"
      client_parameters:
        endpoint_url: "{{ endpoint }}"
pull:
  - prefect_aws.deployments.steps.pull_from_s3:
      id: pull_code
      requires: prefect-aws>=0.3.4
      bucket: "{{ push_code.bucket }}"
      folder: "{{ push_code.folder }}"
      credentials: "{{ prefect.blocks.aws-credentials.dev }}"
      client_parameters:
        endpoint_url: "{{ endpoint }}"
  - prefect.deployments.steps.pull_from_remote_storage:
      id: remote
      url: "s3://{{ bucket }}/my-project/flows"
      key: "{{ prefect.blocks.aws-credentials.dev.aws_access_key_id }}"
      secret: "{{ prefect.blocks.aws-credentials.dev.aws_secret_access_key }}"
      endpoint_url: "{{ endpoint }}"
"""


def test_prefect_yaml_push_and_pull_through_stepengine_run(
    moto_s3: S3Server, bucket: str, project: Path, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import stepengine

    (project / "prefect.yaml").write_text(PREFECT_YAML)
    resolver = stepengine.InMemoryResolver(
        blocks={
            "aws-credentials/dev": {"aws_access_key_id": moto_s3.key, "aws_secret_access_key": moto_s3.secret}
        }
    )
    values = {"bucket": bucket, "endpoint": moto_s3.endpoint_url}
    monkeypatch.chdir(project)
    pushed = stepengine.run(project / "prefect.yaml", sections=["push"], values=values, resolver=resolver)
    assert pushed["push_code"] == {"bucket": bucket, "folder": "my-project"}

    monkeypatch.chdir(workdir)
    events: list[t.Any] = []
    out = stepengine.run(
        project / "prefect.yaml",
        sections=["pull"],
        values={**values, **pushed},
        resolver=resolver,
        on_event=events.append,
    )
    assert out["pull_code"] == {"bucket": bucket, "folder": "my-project", "directory": str(workdir)}
    assert out["remote"] == {"directory": f"{bucket}/my-project/flows"}
    assert read_tree(workdir / bucket / "my-project" / "flows") == {
        "main.py": "print('hello')\n",
        "util/helpers.py": "X = 1\n",
    }
    assert read_tree(workdir)["prefect.yaml"] == PREFECT_YAML
    assert moto_s3.secret not in repr(events)


def test_prefect_yaml_pull_through_the_cli(
    moto_s3: S3Server, bucket: str, project: Path, workdir: Path
) -> None:
    blob.push_to_blob_storage(f"s3://{bucket}/my-project", directory=str(project), **moto_s3.s3fs_options())
    # a deployed pull section has the push outputs filled in already
    text = PREFECT_YAML.replace("{{ push_code.bucket }}", "{{ bucket }}").replace(
        "{{ push_code.folder }}", "my-project"
    )
    (workdir / "prefect.yaml").write_text(text)
    (workdir / "values.yaml").write_text(
        json.dumps(
            {
                "blocks": {
                    "aws-credentials/dev": {
                        "aws_access_key_id": moto_s3.key,
                        "aws_secret_access_key": moto_s3.secret,
                    }
                }
            }
        )
    )
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "stepengine",
            "run",
            "prefect.yaml",
            "--section",
            "pull",
            "--values",
            "values.yaml",
            "--var",
            f"bucket={bucket}",
            "--var",
            f"endpoint={moto_s3.endpoint_url}",
            "--output",
            "json",
        ],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    outputs = json.loads(result.stdout)
    assert outputs["pull_code"] == {"bucket": bucket, "folder": "my-project", "directory": str(workdir)}
    assert outputs["remote"] == {"directory": f"{bucket}/my-project/flows"}
    assert (workdir / "requirements.txt").read_text() == "requests\n"
    assert moto_s3.secret not in result.stdout + result.stderr
