"""S3 pulls through botocore alone (``_blob_s3``) against the s3fs path they replace, on the real moto server.

Every comparison runs the same step twice, in two fresh working directories with two fresh
``STEPENGINE_HOME``s: once with the botocore path and once with it switched off (s3fs), and
compares what a user can see: the files (bytes), the step's outputs or error message, and the
manifest a re-pull relies on.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import typing as t
import uuid
from pathlib import Path

import pytest

from stepengine.builtin_steps import _blob_io, _blob_s3, blob
from stepengine.step_api import StepError
from tests.conftest import ROOT
from tests.fixtures.moto_server import S3Server

OBJECTS = {
    "proj/flows/main.py": b"print('hello')\n",
    "proj/flows/util/helpers.py": b"X = 1\n",
    "proj/requirements.txt": b"requests\n",
    "proj/empty.txt": b"",
    "proj/with space/ünïcode +&=.txt": "ünïcode".encode(),
    "proj/folder-marker/": b"",  # a zero-byte "folder", as consoles create them
    "proj/big.bin": os.urandom(3 * (1 << 20) + 17),  # several 1 MiB reads
    "proj-sibling/not-pulled.txt": b"outside the prefix",
}


@pytest.fixture
def bucket(moto_s3: S3Server) -> str:
    name = f"c-{uuid.uuid4().hex[:12]}"
    client = moto_s3.boto3_client()
    client.create_bucket(Bucket=name)
    for key, body in OBJECTS.items():
        client.put_object(Bucket=name, Key=key, Body=body)
    return name


class Outcome(t.NamedTuple):
    result: t.Any  # the step's output (paths made relative) or its error message
    files: dict[str, bytes]
    manifest: dict[str, t.Any]  # url -> {rel: remote fingerprint}
    used_botocore: bool


def run_pull(
    step: t.Callable[[], t.Any], where: Path, monkeypatch: pytest.MonkeyPatch, *, botocore: bool
) -> Outcome:
    """Run ``step`` in a fresh directory ``where`` with its own STEPENGINE_HOME; the S3 path as chosen."""
    work, home = where / "work", where / "home"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    monkeypatch.setenv("STEPENGINE_HOME", str(home))
    monkeypatch.setattr(_blob_io, "_S3_WITH_BOTOCORE", botocore)
    readers: list[t.Any] = []
    real_open = _blob_s3.open_s3_reader

    def spy(*args: t.Any, **kwargs: t.Any) -> t.Any:
        opened = real_open(*args, **kwargs)
        readers.append(opened)
        return opened

    monkeypatch.setattr(_blob_s3, "open_s3_reader", spy)
    try:
        result = step()
    except StepError as exc:
        result = f"StepError: {exc}"
    result = json.loads(json.dumps(result).replace(str(work), "<work>"))
    files = {p.relative_to(work).as_posix(): p.read_bytes() for p in sorted(work.rglob("*")) if p.is_file()}
    manifest = {}
    for path in sorted((home / "blob-manifests").glob("*.json")):
        data = json.loads(path.read_text())
        assert Path(data["directory"]).is_relative_to(work)
        for rel, entry in data["files"].items():  # the local half of each entry is the file as it is now
            st = os.lstat(Path(data["directory"]) / rel)
            assert (entry["mtime_ns"], entry["ino"]) == (st.st_mtime_ns, st.st_ino)
        manifest[data["url"]] = {rel: entry["remote"] for rel, entry in data["files"].items()}
    return Outcome(result, files, manifest, any(r is not None for r in readers))


def both_ways(
    step: t.Callable[[], t.Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    *,
    expect_botocore: bool = True,
) -> Outcome:
    via_s3fs = run_pull(step, tmp_path / "s3fs", monkeypatch, botocore=False)
    via_botocore = run_pull(step, tmp_path / "botocore", monkeypatch, botocore=True)
    assert not via_s3fs.used_botocore
    assert via_botocore.used_botocore == expect_botocore
    assert via_botocore._replace(used_botocore=False) == via_s3fs
    return via_botocore


# --------------------------------------------------------------------------- same results


def test_pull_from_blob_storage_same_files_outputs_manifest(
    moto_s3: S3Server, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = both_ways(
        lambda: blob.pull_from_blob_storage(
            f"s3://{bucket}/proj", directory="code", **moto_s3.s3fs_options()
        ),
        tmp_path,
        monkeypatch,
    )
    pulled = {
        k.removeprefix("proj/"): v
        for k, v in OBJECTS.items()
        if k.startswith("proj/") and not k.endswith("/")
    }
    assert out.files == {f"code/{rel}": body for rel, body in pulled.items()}
    assert out.result == {
        "directory": "code",
        "url": f"s3://{bucket}/proj",
        "files": len(pulled),
        "bytes": sum(map(len, pulled.values())),
        "transferred": len(pulled),
    }
    assert all(
        fp.startswith(f'{len(pulled[rel])}:ETag:"') for rel, fp in out.manifest[f"s3://{bucket}/proj"].items()
    )


def test_prefect_steps_same_results(
    moto_s3: S3Server, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pull_from_remote_storage (client_kwargs endpoint) and pull_from_s3 (credentials block, merge into the cwd)."""
    remote = both_ways(
        lambda: blob.pull_from_remote_storage(
            f"s3://{bucket}/proj/flows",
            requires="s3fs",
            key=moto_s3.key,
            secret=moto_s3.secret,
            client_kwargs={"endpoint_url": moto_s3.endpoint_url},
        ),
        tmp_path / "remote",
        monkeypatch,
    )
    assert remote.result == {"directory": f"{bucket}/proj/flows"}
    assert remote.files == {
        f"{bucket}/proj/flows/main.py": b"print('hello')\n",
        f"{bucket}/proj/flows/util/helpers.py": b"X = 1\n",
    }

    creds = {
        "aws_access_key_id": moto_s3.key,
        "aws_secret_access_key": moto_s3.secret,
        "region_name": "us-east-1",
        "aws_client_parameters": {"endpoint_url": moto_s3.endpoint_url},
    }
    merged = both_ways(
        lambda: blob.pull_from_s3(bucket, "proj/flows", credentials=creds), tmp_path / "s3", monkeypatch
    )
    assert merged.result == {"bucket": bucket, "folder": "proj/flows", "directory": "<work>"}
    assert merged.files == {"main.py": b"print('hello')\n", "util/helpers.py": b"X = 1\n"}


@pytest.mark.parametrize(
    "location",
    ["proj/requirements.txt", "", "proj/", "proj/flows//"],
    ids=["one-object", "whole-bucket", "trailing-slash", "double-slash"],
)
def test_url_forms_same_results(
    moto_s3: S3Server, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, location: str
) -> None:
    url = f"s3://{bucket}/{location}" if location else f"s3://{bucket}"
    out = both_ways(
        lambda: blob.pull_from_blob_storage(url, directory="out", **moto_s3.s3fs_options()),
        tmp_path,
        monkeypatch,
    )
    if location == "proj/requirements.txt":
        assert out.files == {"out/requirements.txt": b"requests\n"}
    elif not location:
        assert out.files["out/proj-sibling/not-pulled.txt"] == b"outside the prefix"


def test_credentials_from_a_profile_or_the_environment_same_results(
    moto_s3: S3Server, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A credentials block naming a profile, or none at all: botocore's credential chain on both paths."""
    shared = tmp_path / "aws-credentials"
    shared.write_text(
        f"[bench]\naws_access_key_id = {moto_s3.key}\naws_secret_access_key = {moto_s3.secret}\n"
    )
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(shared))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    creds = {"profile_name": "bench", "aws_client_parameters": {"endpoint_url": moto_s3.endpoint_url}}
    out = both_ways(
        lambda: blob.pull_from_blob_storage(container=bucket, folder="proj/flows", credentials=creds),
        tmp_path / "pulls",
        monkeypatch,
    )
    assert out.result["transferred"] == 2
    missing = {
        "profile_name": "no-such-profile",
        "aws_client_parameters": {"endpoint_url": moto_s3.endpoint_url},
    }
    out = both_ways(
        lambda: blob.pull_from_blob_storage(container=bucket, folder="proj", credentials=missing, retries=0),
        tmp_path / "missing",
        monkeypatch,
    )
    assert out.result.startswith(f"StepError: listing s3://{bucket}/proj failed: ProfileNotFound: ")

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", moto_s3.key)  # no credentials in the step: botocore's chain
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", moto_s3.secret)
    out = both_ways(
        lambda: blob.pull_from_remote_storage(f"s3://{bucket}/proj/flows", endpoint_url=moto_s3.endpoint_url),
        tmp_path / "environment",
        monkeypatch,
    )
    assert out.result == {"directory": f"{bucket}/proj/flows"}


def test_big_objects_stream_in_bounded_ranges(
    moto_s3: S3Server, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Memory bounded by the reads, not the objects: above ``_RANGED_ABOVE`` an object comes as byte
    ranges of ``_PART`` bytes, at most ``_PARTS_IN_FLIGHT`` at a time, each body read at most
    ``_CHUNK`` bytes; the files are the same as s3fs's (which, on its path, fetches one range at a time)."""
    import threading

    import botocore.response
    import s3fs

    monkeypatch.setattr(_blob_s3, "_RANGED_ABOVE", 1 << 20)
    monkeypatch.setattr(_blob_s3, "_PART", 1 << 20, raising=False)
    monkeypatch.setattr(_blob_s3, "_PARTS_IN_FLIGHT", 2, raising=False)
    monkeypatch.setattr(_blob_s3, "_CHUNK", 256 << 10)
    monkeypatch.setattr(s3fs.S3FileSystem, "default_block_size", 1 << 20)  # s3fs would fetch 1 MiB ranges
    reads: list[int] = []
    ranges: list[tuple[int, int]] = []
    in_flight = [0, 0]  # now, most
    lock = threading.Lock()
    real_read, real_range = (
        botocore.response.StreamingBody.read,
        getattr(_blob_s3.S3Reader, "_get_range", None),
    )

    def read_spy(self: t.Any, amt: int | None = None) -> bytes:
        data = real_read(self, amt)
        reads.append(len(data))
        return data

    def range_spy(
        self: t.Any, bucket: str, key: str, etag: t.Any, fd: int, first: int, last: int, stop: t.Any
    ) -> None:
        with lock:
            ranges.append((first, last))
            in_flight[0] += 1
            in_flight[1] = max(in_flight)
        try:
            real_range(self, bucket, key, etag, fd, first, last, stop)
        finally:
            with lock:
                in_flight[0] -= 1

    async def no_parallel_ranges(*args: t.Any, **kwargs: t.Any) -> None:
        raise AssertionError("s3fs held ranges in memory")

    monkeypatch.setattr(botocore.response.StreamingBody, "read", read_spy)
    monkeypatch.setattr(_blob_s3.S3Reader, "_get_range", range_spy, raising=False)
    monkeypatch.setattr(s3fs.S3FileSystem, "_download_file_part_concurrent", no_parallel_ranges)
    out = both_ways(
        lambda: blob.pull_from_blob_storage(
            f"s3://{bucket}/proj", directory="code", **moto_s3.s3fs_options()
        ),
        tmp_path,
        monkeypatch,
    )
    assert out.files["code/big.bin"] == OBJECTS["proj/big.bin"]
    size = len(OBJECTS["proj/big.bin"])
    assert sorted(ranges) == [
        (0, (1 << 20) - 1),
        (1 << 20, (2 << 20) - 1),
        (2 << 20, (3 << 20) - 1),
        (3 << 20, size - 1),
    ]
    assert in_flight[1] <= 2
    assert max(reads) <= 256 << 10 and sum(reads) == sum(len(body) for body in OBJECTS.values()) - len(
        b"outside the prefix"
    )


def test_an_object_replaced_during_a_ranged_download_fails_the_pull(
    moto_s3: S3Server, bucket: str, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each range asks for the listing's ETag: ranges of two versions are never mixed into one file."""
    monkeypatch.setattr(_blob_s3, "_RANGED_ABOVE", 1 << 20)
    monkeypatch.setattr(_blob_s3, "_PART", 1 << 20, raising=False)
    real_ranges = getattr(_blob_s3.S3Reader, "_get_ranges", None)

    def replace_first(self: t.Any, bucket_name: str, key: str, *args: t.Any) -> None:
        moto_s3.boto3_client().put_object(
            Bucket=bucket_name, Key=key, Body=os.urandom(len(OBJECTS["proj/big.bin"]))
        )
        real_ranges(self, bucket_name, key, *args)

    monkeypatch.setattr(_blob_s3.S3Reader, "_get_ranges", replace_first, raising=False)
    with pytest.raises(StepError) as info:
        blob.pull_from_blob_storage(f"s3://{bucket}/proj", directory="code", **moto_s3.s3fs_options())
    assert str(info.value) == (
        f"{bucket}/proj/big.bin changed while it was being pulled (its ETag is no longer the "
        "listing's); nothing was written\nhint: run the pull again"
    )
    assert list(workdir.iterdir()) == []


# --------------------------------------------------------------------------- same errors


def test_errors_are_the_same(
    moto_s3: S3Server, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """(Anonymous access is compared by ``test_reader_maps_options_as_s3fs_does``: moto takes ~4 s to refuse it.)"""
    endpoint = {"endpoint_url": moto_s3.endpoint_url}
    cases: dict[str, t.Callable[[], t.Any]] = {
        "wrong-secret": lambda: blob.pull_from_blob_storage(
            f"s3://{bucket}/proj", key=moto_s3.key, secret="wrong", **endpoint
        ),
        "unknown-key": lambda: blob.pull_from_blob_storage(
            f"s3://{bucket}/proj", key="AKIANOTAREALKEY00000", secret="x", **endpoint
        ),
        "no-bucket": lambda: blob.pull_from_blob_storage("s3://no-such-bucket-y/p", **moto_s3.s3fs_options()),
        "empty": lambda: blob.pull_from_blob_storage(f"s3://{bucket}/nothing", **moto_s3.s3fs_options()),
        "caps": lambda: blob.pull_from_blob_storage(
            f"s3://{bucket}/proj", max_files=3, **moto_s3.s3fs_options()
        ),
    }
    expected = {
        "wrong-secret": f"StepError: access denied while listing s3://{bucket}/proj: The request signature we calculated "
        "does not match the signature you provided. Check your key and signing method.\n"
        "hint: check the credentials and that they may read/write this location",
        "unknown-key": f"StepError: access denied while listing s3://{bucket}/proj: The AWS Access Key Id you provided "
        "does not exist in our records.\nhint: check the credentials and that they may read/write this location",
        "no-bucket": "StepError: not found while listing s3://no-such-bucket-y/p: The specified bucket does not exist\n"
        "hint: check the bucket and folder names",
        "empty": f"StepError: nothing to pull: no objects under s3://{bucket}/nothing\nhint: check the bucket and folder names",
        "caps": f"StepError: refusing to pull s3://{bucket}/proj: 6 objects exceed max_files=3\nhint: check the URL, or raise max_files",
    }
    for name, step in cases.items():
        out = both_ways(step, tmp_path / name, monkeypatch)
        assert out.files == {} and out.manifest == {}, name
        assert out.result == expected[name], name


def test_denied_object_fails_the_same_way(
    moto_s3: S3Server, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.builtin_steps.test_blob import _restricted_user

    options = _restricted_user(moto_s3, bucket, "proj/flows/main.py")
    out = both_ways(
        lambda: blob.pull_from_blob_storage(f"s3://{bucket}/proj", directory="code", **options),
        tmp_path,
        monkeypatch,
    )
    assert out.result == (
        f"StepError: access denied while pulling s3://{bucket}/proj: Access Denied\n"
        "hint: check the credentials and that they may read/write this location"
    )
    assert out.files == {}


# --------------------------------------------------------------------------- manifests interchange, fallbacks


def test_a_repull_on_the_other_path_transfers_nothing(
    moto_s3: S3Server, bucket: str, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"s3://{bucket}/proj"
    monkeypatch.setattr(_blob_io, "_S3_WITH_BOTOCORE", False)
    assert blob.pull_from_blob_storage(url, **moto_s3.s3fs_options())["transferred"] == 6
    monkeypatch.setattr(_blob_io, "_S3_WITH_BOTOCORE", True)
    assert blob.pull_from_blob_storage(url, **moto_s3.s3fs_options())["transferred"] == 0
    moto_s3.boto3_client().put_object(Bucket=bucket, Key="proj/requirements.txt", Body=b"changed\n")
    assert blob.pull_from_blob_storage(url, **moto_s3.s3fs_options())["transferred"] == 1
    monkeypatch.setattr(_blob_io, "_S3_WITH_BOTOCORE", False)
    assert blob.pull_from_blob_storage(url, **moto_s3.s3fs_options())["transferred"] == 0
    assert (workdir / bucket / "proj" / "requirements.txt").read_bytes() == b"changed\n"


@pytest.mark.parametrize(
    ("options", "botocore"),
    [
        ({"requester_pays": False, "version_aware": False}, True),
        ({"requester_pays": True}, False),
        ({"s3_additional_kwargs": {"ExpectedBucketOwner": "123456789012"}}, False),
        ({"config_kwargs": {"connector_args": {"keepalive_timeout": 5}}}, False),
    ],
)
def test_options_it_does_not_map_go_through_s3fs(
    moto_s3: S3Server,
    bucket: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    options: dict[str, t.Any],
    botocore: bool,
) -> None:
    both_ways(
        lambda: blob.pull_from_blob_storage(f"s3://{bucket}/proj/flows", **moto_s3.s3fs_options(), **options),
        tmp_path,
        monkeypatch,
        expect_botocore=botocore,
    )


def test_reader_maps_options_as_s3fs_does(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The keyword arguments each path gives botocore's create_client, for the option forms the steps produce."""
    import s3fs

    (tmp_path / "config").write_text("[profile p]\nregion = eu-central-1\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))

    forms: list[dict[str, t.Any]] = [
        {"key": "k", "secret": "s", "endpoint_url": "http://127.0.0.1:1"},
        {
            "username": "u",
            "password": "p",
            "token": "t",
            "client_kwargs": {"region_name": "eu-west-1", "verify": False},
        },
        {
            "key": "k",
            "client_kwargs": {"endpoint_url": "http://127.0.0.1:2", "aws_access_key_id": "k"},
            "use_ssl": False,
        },
        {
            "anon": True,
            "key": "k",
            "client_kwargs": {"aws_secret_access_key": "s", "region_name": "us-west-2"},
        },
        {
            "config_kwargs": {"read_timeout": 60, "retries": {"max_attempts": 2}},
            "client_kwargs": {"use_ssl": True},
        },
        {"profile": "p", "key": "", "secret": None},
    ]
    for options in forms:
        reader, _root = _blob_s3.open_s3_reader("s3://b/f", dict(options), 32) or (None, None)
        assert reader is not None, options
        ours = _captured_create_client(reader._create_client)
        fs, _root = _blob_io.open_filesystem("s3://b/f", dict(options), 32)
        assert isinstance(fs, s3fs.S3FileSystem)
        theirs = _captured_create_client(fs.connect, aio=True)
        assert ours == theirs, options


def _captured_create_client(create: t.Callable[[], t.Any], *, aio: bool = False) -> dict[str, t.Any]:
    """The arguments ``create`` passes to ``Session.create_client`` (config as a dict), and the session's profile."""
    import botocore.session

    if aio:
        import aiobotocore.session

        cls: t.Any = aiobotocore.session.AioSession
    else:
        cls = botocore.session.Session
    seen: dict[str, t.Any] = {}

    class Stop(Exception):
        pass

    def fake(self: t.Any, service_name: str, **kwargs: t.Any) -> t.Any:
        config = kwargs.pop("config")
        options = {
            name: getattr(config, name) for name in config.OPTION_DEFAULTS if name != "user_agent_appid"
        }
        seen.update(
            service=service_name, profile=self._session_instance_vars.get("profile"), config=options, **kwargs
        )
        raise Stop

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(cls, "create_client", fake)
        with pytest.raises(Stop):
            create()
    return seen


def test_a_pull_imports_neither_s3fs_nor_fsspec(moto_s3: S3Server, bucket: str, tmp_path: Path) -> None:
    """What the speed is for: listing and downloading need botocore only."""
    code = (
        "import json, os, sys\nfrom stepengine.builtin_steps import blob\n"
        "out = blob.pull_from_blob_storage(sys.argv[1], directory='out', key=os.environ['K'], secret=os.environ['S'],"
        " endpoint_url=os.environ['E'])\n"
        "print(json.dumps([out['files'], sorted(m for m in ('s3fs', 'aiobotocore', 'aiohttp', 'fsspec', 'boto3')"
        " if m in sys.modules)]))\n"
    )
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "K": moto_s3.key,
        "S": moto_s3.secret,
        "E": moto_s3.endpoint_url,
        "STEPENGINE_HOME": str(tmp_path / "home"),
    }
    done = subprocess.run(
        [sys.executable, "-c", code, f"s3://{bucket}/proj"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [6, []]


def test_a_repull_that_changes_nothing_writes_nothing(
    moto_s3: S3Server, bucket: str, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No swap, no manifest rewrite: the directory, its parent and the manifest keep their mtimes."""
    url = f"s3://{bucket}/proj/flows"
    for merge in (False, True):
        kwargs: dict[str, t.Any] = {"directory": "." if merge else "code", **moto_s3.s3fs_options()}
        blob.pull_from_blob_storage(url, **kwargs)
        manifests = list(Path(os.environ["STEPENGINE_HOME"], "blob-manifests").glob("*.json"))
        watched = [workdir, workdir / ("." if merge else "code"), *manifests]
        before = [p.stat().st_mtime_ns for p in watched]
        assert blob.pull_from_blob_storage(url, **kwargs)["transferred"] == 0
        assert [p.stat().st_mtime_ns for p in watched] == before
        moto_s3.boto3_client().put_object(Bucket=bucket, Key="proj/flows/main.py", Body=b"changed\n")
        assert blob.pull_from_blob_storage(url, **kwargs)["transferred"] == 1
        assert blob.pull_from_blob_storage(url, **kwargs)["transferred"] == 0
        target = workdir if merge else workdir / "code"
        assert (target / "main.py").read_bytes() == b"changed\n"
        moto_s3.boto3_client().put_object(Bucket=bucket, Key="proj/flows/main.py", Body=b"print('hello')\n")
