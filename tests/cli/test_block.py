"""``stepengine block``: set/get/ls/rm against the real store under $STEPENGINE_HOME (in-process CLI)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stepengine.cli import main
from stepengine.stores.sqlite import SQLiteStore


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_set_get_ls_rm(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert cli(capsys, "block", "set", "string/greeting", "--value", "hello") == (
        0,
        "",
        "saved block string/greeting\n",
    )
    assert cli(capsys, "block", "get", "string/greeting") == (0, "hello\n", "")
    (tmp_path / "creds.json").write_text(json.dumps({"token": "ghp_file-token", "username": "bot"}))
    assert (
        cli(capsys, "block", "set", "github-credentials/ci", "--from-file", str(tmp_path / "creds.json"))[0]
        == 0
    )
    code, out, _ = cli(capsys, "block", "get", "github-credentials/ci")
    assert json.loads(out) == {"token": "***", "username": "bot"}
    code, out, _ = cli(capsys, "block", "get", "github-credentials/ci", "--reveal")
    assert json.loads(out) == {"token": "ghp_file-token", "username": "bot"}
    assert cli(capsys, "block", "set", "json/settings", "--json", '{"replicas": 2}')[0] == 0
    assert json.loads(cli(capsys, "block", "get", "json/settings")[1]) == {"value": {"replicas": 2}}
    assert cli(capsys, "block", "set", "json/conn", "--json", '"dsn://u:p@h"', "--secret")[0] == 0
    assert json.loads(cli(capsys, "block", "get", "json/conn")[1]) == {"value": "***"}
    assert (
        cli(capsys, "block", "ls")[1]
        == "github-credentials/ci\njson/conn  (secret)\njson/settings\nstring/greeting\n"
    )
    assert json.loads(cli(capsys, "block", "ls", "--type", "json", "-o", "json")[1])[0]["name"] == "json/conn"
    assert cli(capsys, "block", "rm", "string/greeting") == (0, "", "removed block string/greeting\n")
    store = SQLiteStore()
    assert store.describe_missing("block", "string", "greeting") == f"local store {store.path}"
    code, _, err = cli(capsys, "block", "rm", "string/greeting")
    assert (code, err) == (1, f"Error: no block string/greeting in {store.path}\n")


def test_bad_input_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(capsys, "block", "set", "secret-only-type", "--value", "x")
    assert code == 2
    assert "'secret-only-type' is not TYPE/NAME (e.g. secret/github-token)" in err
    code, _, err = cli(capsys, "block", "set", "secret/a", "--value", "x", "--json", "1")
    assert (code, err.splitlines()[-1]) == (2, "Error: give exactly one of --value, --json or --from-file")
    code, _, err = cli(capsys, "block", "set", "aws-credentials/p", "--value", "x")
    assert (code, err.splitlines()[-1]) == (
        2,
        "Error: a aws-credentials block holds JSON: use --json or --from-file",
    )
    code, _, err = cli(capsys, "block", "set", "aws-credentials/p", "--json", "{'k': 1}")
    assert code == 2
    assert "not valid JSON (Expecting property name enclosed in double quotes at line 1 column 2)" in err
    code, _, err = cli(capsys, "block", "set", "aws-credentials/p", "--json", "[1]")
    assert code == 2
    assert "a aws-credentials block holds a JSON object with its fields, not list" in err
    code, _, err = cli(capsys, "block", "set", "Secret/a", "--value", "x")
    assert code == 2
    assert "block type 'Secret' is not valid: use lowercase letters, digits, '-' and '_'" in err


def test_a_corrupt_store_is_reported_with_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    path = SQLiteStore().path
    path.parent.mkdir(parents=True)
    path.write_bytes(b"garbage" * 1000)
    code, out, err = cli(capsys, "block", "ls")
    assert (code, out) == (2, "")
    assert err == (
        f"error: {path}: not a usable stepengine store (file is not a database)\n"
        "hint: the file is damaged or is not a store: move it away, and set the blocks and variables again\n"
    )
