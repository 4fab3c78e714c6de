"""pull_with_block (and agit_clone): a storage block read through the run's store, pulled with the
blob and git steps, against real servers on 127.0.0.1 (moto S3, the git smart-HTTP server) and real
files. Each run goes through ``stepengine.run`` so the block comes from the resolver, as in a file."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

import stepengine
from stepengine.errors import StepExecutionError
from tests.builtin_steps.test_blob import read_tree, write_tree
from tests.fixtures.git_server import GitServer, create_bare_repo
from tests.fixtures.moto_server import S3Server

FILES = {
    "flows/main.py": "print('hi')\n",
    "README.md": "# code\n",
    "debug.log": "x\n",
    ".prefectignore": "  *.log  \n",
}


def _run(
    tmp_path: Path,
    block_type: str,
    name: str,
    blocks: dict,
    *,
    step: str = "prefect.deployments.steps.pull_with_block",
) -> dict:
    prefect_yaml = tmp_path / "prefect.yaml"
    prefect_yaml.write_text(
        f"pull:\n  - {step}:\n      id: code\n      block_type_slug: {block_type}\n      block_document_name: {name}\n"
    )
    return stepengine.run(prefect_yaml, resolver=stepengine.InMemoryResolver(blocks=blocks))


def test_local_file_system_block_copies_its_basepath(tmp_path: Path, workdir: Path) -> None:
    source = write_tree(tmp_path / "source", FILES)
    outputs = _run(
        tmp_path, "local-file-system", "code", {"local-file-system/code": {"basepath": str(source)}}
    )
    assert outputs["code"] == {"directory": "local-file-system-code"}
    # Prefect's LocalFileSystem leaves out what the source's .prefectignore matches (lines stripped)
    assert read_tree(workdir / "local-file-system-code") == {
        k: v for k, v in FILES.items() if k != "debug.log"
    }


def test_a_second_pull_replaces_the_directory(tmp_path: Path, workdir: Path) -> None:
    source = write_tree(tmp_path / "source", {"a.txt": "1\n"})
    blocks = {"local-file-system/code": {"basepath": str(source)}}
    _run(tmp_path, "local-file-system", "code", blocks)
    (source / "a.txt").unlink()
    (source / "b.txt").write_text("2\n")
    _run(tmp_path, "local-file-system", "code", blocks)
    assert read_tree(workdir / "local-file-system-code") == {"b.txt": "2\n"}


def test_a_basepath_holding_the_working_directory_is_not_copied_into_itself(
    tmp_path: Path, workdir: Path
) -> None:
    (workdir / "flow.py").write_text("X = 1\n")
    _run(tmp_path, "local-file-system", "here", {"local-file-system/here": {"basepath": "."}})
    _run(tmp_path, "local-file-system", "here", {"local-file-system/here": {"basepath": "."}})
    assert read_tree(workdir / "local-file-system-here") == {"flow.py": "X = 1\n"}


def test_remote_file_system_block_pulls_its_basepath_with_its_settings(tmp_path: Path, workdir: Path) -> None:
    source = write_tree(tmp_path / "remote", {"flows/main.py": "print('hi')\n"})
    blocks = {"remote-file-system/code": {"basepath": f"file://{source}", "settings": {}}}
    outputs = _run(tmp_path, "remote-file-system", "code", blocks)
    assert outputs["directory"] == "remote-file-system-code"
    assert read_tree(workdir / "remote-file-system-code") == {"flows/main.py": "print('hi')\n"}


def test_s3_bucket_block_with_nested_credentials(tmp_path: Path, workdir: Path, moto_s3: S3Server) -> None:
    bucket = f"b-{uuid.uuid4().hex[:12]}"
    client = moto_s3.boto3_client()
    client.create_bucket(Bucket=bucket)
    client.put_object(Bucket=bucket, Key="proj/flows/main.py", Body=b"print('s3')\n")
    client.put_object(Bucket=bucket, Key="other/x.txt", Body=b"not mine\n")
    block = {  # what a Prefect server returns for an S3Bucket with an AwsCredentials block inside
        "bucket_name": bucket,
        "bucket_folder": "proj",
        "credentials": {
            "aws_access_key_id": moto_s3.key,
            "aws_secret_access_key": moto_s3.secret,
            "region_name": "us-east-1",
            "aws_client_parameters": {"endpoint_url": moto_s3.endpoint_url},
        },
    }
    outputs = _run(tmp_path, "s3-bucket", "prod", {"s3-bucket/prod": block})
    assert outputs["code"] == {"directory": "s3-bucket-prod"}
    assert read_tree(workdir / "s3-bucket-prod") == {"flows/main.py": "print('s3')\n"}


@pytest.fixture(scope="module")
def private_repo(git_server: GitServer) -> str:
    create_bare_repo(git_server.root / "private" / "blocks.git", files=1, extra_files={"flow.py": "X = 1\n"})
    return git_server.url("private/blocks.git")


def test_github_repository_block_clones_with_its_credentials_token(
    tmp_path: Path, workdir: Path, git_server: GitServer, private_repo: str
) -> None:
    block = {"repository_url": private_repo, "reference": "main", "credentials": {"token": git_server.token}}
    outputs = _run(tmp_path, "github-repository", "app", {"github-repository/app": block})
    assert outputs["code"] == {"directory": "github-repository-app"}
    assert (workdir / "github-repository-app" / "flow.py").read_text() == "X = 1\n"
    assert git_server.token not in (workdir / "github-repository-app" / ".git" / "config").read_text()


def test_unsupported_block_type_is_named(tmp_path: Path, workdir: Path) -> None:
    with pytest.raises(StepExecutionError) as info:
        _run(tmp_path, "smb", "share", {"smb/share": {"share_path": "//host/share"}})
    message = str(info.value.__cause__)
    assert message.startswith(
        "pull_with_block cannot pull with a 'smb' block (smb/share)\nhint: supported block types: "
    )
    assert "s3-bucket" in message and "github-repository" in message


def test_missing_block_names_where_it_looked(tmp_path: Path, workdir: Path) -> None:
    with pytest.raises(StepExecutionError) as info:
        _run(tmp_path, "s3-bucket", "nope", {})
    assert str(info.value.__cause__).startswith("block s3-bucket/nope not found")


def test_each_load_is_a_fresh_copy(tmp_path: Path) -> None:
    """A step that changes the block it loaded does not change what the next load gives."""
    from stepengine.step_api import load_block

    seen = []

    def grab() -> dict:
        data = load_block("json", "cfg")
        seen.append(dict(data["value"]))
        data["value"]["n"] += 1
        return {}

    (tmp_path / "prefect.yaml").write_text("pull:\n  - grab: {}\n  - grab: {}\n")
    stepengine.run(
        tmp_path / "prefect.yaml",
        steps={"grab": grab},
        resolver=stepengine.InMemoryResolver(blocks={"json/cfg": {"value": {"n": 1}}}),
    )
    assert seen == [{"n": 1}, {"n": 1}]


def test_agit_clone_is_the_async_twin(
    tmp_path: Path, workdir: Path, git_server: GitServer, private_repo: str
) -> None:
    (tmp_path / "prefect.yaml").write_text(
        "pull:\n  - prefect.deployments.steps.pull.agit_clone:\n      id: clone\n"
        f"      repository: {private_repo}\n      access_token: '{{{{ prefect.blocks.secret.tok }}}}'\n"
    )
    outputs = stepengine.run(
        tmp_path / "prefect.yaml",
        resolver=stepengine.InMemoryResolver(blocks={"secret/tok": git_server.token}),
    )
    assert outputs["clone"] == {"directory": "blocks"}
    assert (workdir / "blocks" / "flow.py").read_text() == "X = 1\n"
