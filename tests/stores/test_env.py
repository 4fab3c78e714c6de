"""The environment store: the documented name mapping, and secrets masked from the start of a run."""

from __future__ import annotations

import pytest

from stepengine.errors import StoreError
from stepengine.masking import Masker, using_masker
from stepengine.stores.env import EnvStore, env_name, env_secrets


def test_env_name_normalises_every_non_alphanumeric_character() -> None:
    assert env_name("secret", "github-token") == "SECRET__GITHUB_TOKEN"
    assert (
        env_name("aws-credentials", "prod.eu", "aws_secret_access_key")
        == "AWS_CREDENTIALS__PROD_EU__AWS_SECRET_ACCESS_KEY"
    )
    assert env_name("branch") == "BRANCH"


def test_blocks_from_whole_values_and_per_field_variables() -> None:
    env = {
        "STEPENGINE_BLOCK_SECRET__GITHUB_TOKEN": "ghp_env",
        "STEPENGINE_BLOCK_STRING__GREETING": "hello",
        "STEPENGINE_BLOCK_JSON__SETTINGS": '{"replicas": 2}',
        "STEPENGINE_BLOCK_AWS_CREDENTIALS__PROD": '{"aws_access_key_id": "AKIA", "region_name": "eu"}',
        "STEPENGINE_BLOCK_AWS_CREDENTIALS__PROD__AWS_SECRET_ACCESS_KEY": "wJalr-secret",
        "STEPENGINE_BLOCK_GITHUB_CREDENTIALS__CI__TOKEN": "ghp_field",
    }
    store = EnvStore(env)
    assert store.get_block("secret", "github-token") == {"value": "ghp_env"}
    assert store.get_block("string", "greeting") == {"value": "hello"}
    assert store.get_block("json", "settings") == {"value": {"replicas": 2}}
    assert store.get_block("aws-credentials", "prod") == {
        "aws_access_key_id": "AKIA",
        "region_name": "eu",
        "aws_secret_access_key": "wJalr-secret",
    }
    assert store.get_block("github-credentials", "ci") == {"token": "ghp_field"}
    with pytest.raises(LookupError):
        store.get_block("secret", "missing")


def test_variables_and_secret_variables() -> None:
    store = EnvStore({"STEPENGINE_VAR_BRANCH": "main", "STEPENGINE_SECRET_VAR_DB_PASSWORD": "db-pass-1"})
    run = Masker()
    with using_masker(run):
        assert store.get_variable("branch") == "main"
        assert store.get_variable("db-password") == "db-pass-1"
    with pytest.raises(LookupError):
        store.get_variable("other")
    assert run.mask("main db-pass-1") == "main ***"


def test_a_credentials_block_that_is_not_a_json_object_is_a_clear_error() -> None:
    store = EnvStore({"STEPENGINE_BLOCK_AWS_CREDENTIALS__PROD": "[1, 2]"})
    with pytest.raises(StoreError) as info:
        store.get_block("aws-credentials", "prod")
    assert str(info.value) == (
        "environment variable STEPENGINE_BLOCK_AWS_CREDENTIALS__PROD must hold a JSON object "
        "(the fields of the aws-credentials block 'prod'), not list"
    )
    with pytest.raises(
        StoreError,
        match=r"^environment variable STEPENGINE_BLOCK_JSON__X is not valid JSON: Expecting property name enclosed in double quotes: line 1 column 2 \(char 1\)$",
    ):
        EnvStore({"STEPENGINE_BLOCK_JSON__X": "{nope"}).get_block("json", "x")


def test_env_secrets_lists_every_secret_the_environment_holds() -> None:
    env = {
        "STEPENGINE_BLOCK_SECRET__TOK": "tok-value",
        "STEPENGINE_BLOCK_STRING__NAME": "not-secret-1",
        "STEPENGINE_BLOCK_AWS_CREDENTIALS__P__AWS_SECRET_ACCESS_KEY": "field-secret",
        "STEPENGINE_BLOCK_AWS_CREDENTIALS__P__REGION_NAME": "not-secret-2",
        "STEPENGINE_BLOCK_GITHUB_CREDENTIALS__Q": '{"token": "json-field-secret", "user": "not-secret-3"}',
        "STEPENGINE_SECRET_VAR_PW": "secret-var",
        "STEPENGINE_VAR_BRANCH": "not-secret-4",
        "STEPENGINE_SECRET_ENV": "DEPLOY_KEY, OTHER_KEY",
        "DEPLOY_KEY": "listed-env",
        "PREFECT_API_KEY": "pnu_key",
        "HOME": "/root",
    }
    assert sorted(env_secrets(env)) == sorted(
        ["tok-value", "field-secret", "json-field-secret", "secret-var", "listed-env", "pnu_key"]
    )
