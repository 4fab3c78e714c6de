"""The Prefect server store, against a real ``prefect server start`` (slow) and real loopback HTTP servers."""

from __future__ import annotations

import http.server
import json
import subprocess
import sys
import threading
import typing as t
from pathlib import Path

import pytest

from stepengine.errors import StoreError
from stepengine.masking import Masker, using_masker
from stepengine.stores.prefect_api import PrefectAPIStore
from testkit.processes import free_port
from tests.fixtures.prefect_server import PrefectServer

SECRET = "prefect-" + "s3cr3t-token"  # never a literal in a line a traceback could show
PASSWORD = "registry-" + "pa55word"
NESTED = "nested-" + "tok-123456"

#: a block that references another block document (Prefect stores a reference, serves it hydrated)
NESTED_BLOCKS = """
import sys
from pydantic import SecretStr
from prefect.blocks.core import Block

class InnerCreds(Block):
    _block_type_slug = "inner-creds"
    token: SecretStr
    user: str = "svc"

class OuterStore(Block):
    _block_type_slug = "outer-store"
    bucket: str
    credentials: InnerCreds

InnerCreds(token=sys.argv[1]).save("inner-doc", overwrite=True)
OuterStore(bucket="bkt", credentials=InnerCreds.load("inner-doc")).save("outer-doc", overwrite=True)
"""


@pytest.fixture(scope="module")
def prefect_documents(prefect_server: PrefectServer) -> PrefectServer:
    """A secret block and a credentials block saved by Prefect's client, a variable set by its CLI."""
    prefect_server.run(
        "python",
        "-c",
        "import sys\n"
        "from prefect.blocks.system import Secret\n"
        "from prefect_docker.credentials import DockerRegistryCredentials\n"
        "Secret(value=sys.argv[1]).save('gh-token', overwrite=True)\n"
        "DockerRegistryCredentials(username='deployer', password=sys.argv[2], registry_url='127.0.0.1:5000')"
        ".save('registry', overwrite=True)\n",
        SECRET,
        PASSWORD,
    )
    prefect_server.run("prefect", "variable", "set", "deploy_branch", "release-1", "--overwrite")
    prefect_server.run("python", "-c", NESTED_BLOCKS, NESTED)
    return prefect_server


@pytest.mark.slow
def test_reads_a_secret_block_and_a_variable_created_by_prefect(prefect_documents: PrefectServer) -> None:
    store = PrefectAPIStore(prefect_documents.api_url)
    run = Masker()
    with using_masker(run):
        assert store.get_block("secret", "gh-token") == {"value": SECRET}
        credentials = store.get_block("docker-registry-credentials", "registry")
        assert store.get_variable("deploy_branch") == "release-1"
    assert credentials["password"] == PASSWORD
    assert credentials["username"] == "deployer"
    # the block schema's secret_fields are masked for the run, the rest is not
    assert run.mask(f"{SECRET} {PASSWORD} deployer release-1") == "*** *** deployer release-1"
    with using_masker(run):
        outer = store.get_block("outer-store", "outer-doc")
    assert outer == {"bucket": "bkt", "credentials": {"token": NESTED, "user": "svc"}}
    assert run.mask(f"{NESTED} svc bkt") == "*** svc bkt"  # secret_fields: credentials.token
    with pytest.raises(LookupError):
        store.get_block("secret", "no-such-block")
    with pytest.raises(LookupError):
        store.get_variable("no_such_variable")


@pytest.mark.slow
def test_cli_run_reads_prefect_blocks_and_masks_them(
    prefect_documents: PrefectServer, tmp_path: Path
) -> None:
    (tmp_path / "prefect.yaml").write_text(
        "pull:\n"
        "  - prefect.deployments.steps.run_shell_script:\n"
        "      id: show\n"
        "      script: echo {{ prefect.blocks.secret.gh-token }} {{ prefect.variables.deploy_branch }}"
        " {{ prefect.blocks.docker-registry-credentials.registry.password }}\n"
    )
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "stepengine",
            "run",
            "--output",
            "json",
            "--prefect-api-url",
            prefect_documents.api_url,
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["show"]["stdout"] == "*** release-1 ***"
    assert SECRET not in result.stdout + result.stderr
    assert PASSWORD not in result.stdout + result.stderr


def test_an_unreachable_server_is_a_clear_error() -> None:
    port = free_port()
    store = PrefectAPIStore(f"http://127.0.0.1:{port}/api", "pnu_" + "key123456")
    with pytest.raises(StoreError) as info:
        store.get_variable("x")
    assert str(info.value) == (
        f"cannot reach the Prefect API at http://127.0.0.1:{port}/api: [Errno 111] Connection refused\n"
        "hint: is the server running? (--prefect-api-url / PREFECT_API_URL)"
    )


class _AuthServer(http.server.BaseHTTPRequestHandler):
    """A stand-in for Prefect Cloud's auth check (Cloud cannot be reached here): 401 without the key."""

    seen: t.ClassVar[list[str | None]] = []

    def do_GET(self) -> None:
        _AuthServer.seen.append(self.headers.get("Authorization"))
        if self.headers.get("Authorization") != "Bearer pnu_right-key":
            self.send_response(401)
            self.end_headers()
            return
        body = json.dumps({"name": "v", "value": [1, 2]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: t.Any) -> None:
        pass


def test_api_key_is_sent_as_bearer_and_a_refusal_names_no_key() -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _AuthServer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/api"
        assert PrefectAPIStore(url, "pnu_right-key").get_variable("v") == [1, 2]
        with pytest.raises(StoreError) as info:
            PrefectAPIStore(url, "pnu_wrong-key").get_variable("v")
    finally:
        server.shutdown()
        server.server_close()
    assert (
        str(info.value)
        == f"the Prefect API at {url} refused the request (HTTP 401)\nhint: check PREFECT_API_KEY"
    )
    assert _AuthServer.seen[-2:] == ["Bearer pnu_right-key", "Bearer pnu_wrong-key"]


def test_a_password_in_the_api_url_is_masked_in_errors() -> None:
    port = free_port()
    run = Masker()
    with using_masker(run):
        store = PrefectAPIStore(f"http://user:{PASSWORD}@127.0.0.1:{port}/api")
        with pytest.raises(StoreError) as info:
            store.get_block("secret", "x")
        message = str(info.value)
    assert message.startswith(f"cannot reach the Prefect API at http://user:***@127.0.0.1:{port}/api: ")
