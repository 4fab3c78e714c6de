"""Credentials blocks of the Prefect-named GCS and Azure steps, against the real emulators on 127.0.0.1.

GCS service accounts: the storage emulator accepts any caller, so these tests also need Google's
OAuth token endpoint, which cannot run here. ``TokenEndpoint`` below is a stand-in for it (the only
one in the blob tests): it accepts a JWT-bearer grant only when the JWT is signed with the service
account's private key, and answers with an access token. That proves the step handed the account to
google-auth, which signed in with it; the objects then travel through the real emulator.
"""

from __future__ import annotations

import base64
import json
import threading
import typing as t
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from stepengine.builtin_steps import blob
from stepengine.step_api import StepError
from tests.builtin_steps.test_blob import PUSHED, read_tree, write_tree
from tests.fixtures.azurite import ACCOUNT_KEY, AzuriteServer
from tests.fixtures.gcs_emulator import GCSServer

PROJECT = {**PUSHED, "debug.log": "ignored\n"}


def _b64decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


class TokenEndpoint:
    """Google's OAuth token endpoint for service accounts, on 127.0.0.1 (see the module docstring)."""

    def __init__(self, public_key: rsa.RSAPublicKey) -> None:
        self.grants: list[dict[str, t.Any]] = []  # the verified JWT claims
        self.rejected = 0
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
                form = urllib.parse.parse_qs(body)
                claims = endpoint.verify(form.get("assertion", [""])[0])
                if (
                    form.get("grant_type") != ["urn:ietf:params:oauth:grant-type:jwt-bearer"]
                    or claims is None
                ):
                    endpoint.rejected += 1
                    self._answer(400, {"error": "invalid_grant"})
                    return
                endpoint.grants.append(claims)
                self._answer(
                    200,
                    {"access_token": f"token-{uuid.uuid4().hex}", "expires_in": 3600, "token_type": "Bearer"},
                )

            def _answer(self, status: int, data: dict[str, t.Any]) -> None:
                payload = json.dumps(data).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: t.Any) -> None:
                pass

        self.public_key = public_key
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/token"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def verify(self, assertion: str) -> dict[str, t.Any] | None:
        try:
            header, payload, signature = assertion.split(".")
            self.public_key.verify(
                _b64decode(signature), f"{header}.{payload}".encode(), padding.PKCS1v15(), hashes.SHA256()
            )
        except Exception:
            return None
        return t.cast(dict[str, t.Any], json.loads(_b64decode(payload)))

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def service_account() -> t.Iterator[tuple[dict[str, str], TokenEndpoint]]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    endpoint = TokenEndpoint(key.public_key())
    info = {
        "type": "service_account",
        "project_id": "test",
        "private_key_id": uuid.uuid4().hex,
        "private_key": pem.decode(),
        "client_email": "deployer@test.iam.gserviceaccount.com",
        "client_id": "1234567890",
        "token_uri": endpoint.url,
    }
    try:
        yield info, endpoint
    finally:
        endpoint.close()


@pytest.mark.parametrize("form", ["info", "info as JSON text", "file"])
def test_gcs_steps_sign_in_with_a_service_account(
    gcs_emulator: GCSServer,
    service_account: tuple[dict[str, str], TokenEndpoint],
    tmp_path: Path,
    workdir: Path,
    monkeypatch: pytest.MonkeyPatch,
    form: str,
) -> None:
    info, endpoint = service_account
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_emulator.endpoint_url)
    if form == "file":
        path = tmp_path / "account.json"
        path.write_text(json.dumps(info))
        credentials: dict[str, t.Any] = {"service_account_file": str(path)}
    else:
        credentials = {"service_account_info": json.dumps(info) if form == "info as JSON text" else info}
    project = write_tree(tmp_path / "project", PROJECT)
    monkeypatch.chdir(project)
    folder = f"sa-{uuid.uuid4().hex[:8]}"

    pushed = blob.push_to_gcs(gcs_emulator.bucket, folder, project="test", credentials=credentials)
    monkeypatch.chdir(workdir)
    pulled = blob.pull_from_gcs(gcs_emulator.bucket, folder, project="test", credentials=credentials)

    assert pushed == {"bucket": gcs_emulator.bucket, "folder": folder}
    assert pulled == {"bucket": gcs_emulator.bucket, "folder": folder, "directory": str(workdir)}
    assert read_tree(workdir) == PUSHED
    assert endpoint.rejected == 0
    assert endpoint.grants, "the steps never signed in with the service account"
    assert {g["iss"] for g in endpoint.grants} == {info["client_email"]}


def test_a_service_account_with_a_foreign_key_is_refused_and_not_shown(
    gcs_emulator: GCSServer,
    service_account: tuple[dict[str, str], TokenEndpoint],
    workdir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    info, endpoint = service_account
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_emulator.endpoint_url)
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = {
        **info,
        "private_key": other.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode(),
    }
    with pytest.raises(StepError) as caught:
        blob.pull_from_gcs(
            gcs_emulator.bucket, "anything", project="test", credentials={"service_account_info": forged}
        )
    assert endpoint.rejected == 1 and not endpoint.grants  # refused once, not retried
    text = str(caught.value) + "".join(str(a) for a in caught.value.args)
    assert text.startswith(f"the service account {info['client_email']} could not sign in: ")
    secret_line = forged["private_key"].splitlines()[1]
    assert secret_line not in text


def test_a_missing_service_account_file_is_named(tmp_path: Path, workdir: Path) -> None:
    missing = tmp_path / "nope.json"
    with pytest.raises(StepError, match=f"cannot read credentials.service_account_file {missing}"):
        blob.pull_from_gcs("b", "f", project="test", credentials={"service_account_file": str(missing)})
    assert list(workdir.iterdir()) == []


# --------------------------------------------------------------------------- Azure: account_url


def test_azure_steps_with_a_path_style_account_url_and_key(
    azurite: AzuriteServer, tmp_path: Path, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Azurite's URL is path-style (``http://127.0.0.1:PORT/devstoreaccount1``), like Azure Stack's."""
    import adlfs

    container = f"c{uuid.uuid4().hex[:10]}"
    adlfs.AzureBlobFileSystem(connection_string=azurite.connection_string).mkdir(container)
    credentials = {"account_url": azurite.blob_endpoint + "/", "account_key": ACCOUNT_KEY}
    monkeypatch.chdir(write_tree(tmp_path / "project", PROJECT))
    assert blob.push_to_azure_blob_storage(container, "f", credentials) == {
        "container": container,
        "folder": "f",
    }
    monkeypatch.chdir(workdir)
    out = blob.pull_from_azure_blob_storage(container, "f", credentials)
    assert out == {"container": container, "folder": "f", "directory": str(workdir)}
    assert read_tree(workdir) == PUSHED
    # the same objects, read back with the SDK's own connection string: they really are in Azurite
    names = adlfs.AzureBlobFileSystem(connection_string=azurite.connection_string).find(f"{container}/f")
    assert sorted(n.split("/f/", 1)[1] for n in names) == sorted(PUSHED)


def test_a_path_style_account_url_without_a_key_says_what_is_missing(workdir: Path) -> None:
    with pytest.raises(StepError) as caught:
        blob.pull_from_azure_blob_storage("c", "f", {"account_url": "http://127.0.0.1:1/devstoreaccount1"})
    assert str(caught.value).splitlines() == [
        "the path-style account URL http://127.0.0.1:1/devstoreaccount1 needs account_key or sas_token in the credentials",
        "hint: an emulator or Azure Stack endpoint cannot use a service principal here; or give connection_string",
    ]
    assert list(workdir.iterdir()) == []
