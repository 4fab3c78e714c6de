"""One convention on every verb (issue 15), checked as a table over every registered command.

-o/--output text|json is the format (json: one JSON document, alone on stdout); --output-file is a
file; -q prints only errors and the data asked for; -v adds detail; old spellings still work and
warn on stderr naming the new one. A verb added to ``stepengine.cli.COMMANDS`` without a row here, or
without the options, fails ``test_every_registered_verb_has_a_row`` / ``..._declares_the_convention``.
The verbs run in-process (``stepengine.cli.main``) against a real project, store and steps.
"""

from __future__ import annotations

import json
import typing as t
from pathlib import Path

import click
import pytest

from stepengine.cli import main
from stepengine.cli._convention import Command

PREFECT_YAML = """\
name: demo
build:
  - prefect.deployments.steps.run_shell_script:
      id: built
      script: echo built
pull:
  - prefect.deployments.steps.set_working_directory:
      directory: "{directory}"
deployments:
  - name: a
    entrypoint: flows/hello.py:hello
"""

FLOW = 'from prefect import flow\n\n\n@flow\ndef hello(who: str = "you"):\n    """Say hello."""\n    print("hello", who)\n'


class Verb(t.NamedTuple):
    argv: tuple[str, ...]
    #: it prints data: -o json gives one JSON document on stdout
    json: bool = True
    #: a text only -v shows (stdout or stderr)
    detail: str | None = None
    #: commands run first, their output ignored
    before: tuple[tuple[str, ...], ...] = ()
    #: old spellings: the command line, and the new spelling its warning names
    old: tuple[tuple[tuple[str, ...], str], ...] = ()
    #: False: needs a Prefect server and a flow run (tests/project/test_prefect_worker*); declared only
    runnable: bool = True


DEPLOYED = (("deploy", "-n", "a", "-q", "--output-file", "spec.json"),)

VERBS: dict[str, Verb] = {
    "run": Verb(("run", "-s", "pull"), detail="inputs:"),
    "plan": Verb(("plan",), detail="as written:"),
    "validate": Verb(("validate",), detail="1 deployment"),
    "steps": Verb(
        ("steps", "git_clone"),
        detail=":param repository:",
        old=((("steps", "git_clone", "--json"), "-o json"),),
    ),
    "schema": Verb(("schema", "--no-steps"), detail="composed in"),
    "block set": Verb(("block", "set", "string/new", "--value", "hello"), json=False, detail="store.db"),
    "block get": Verb(("block", "get", "string/greeting"), detail="store.db"),
    "block ls": Verb(("block", "ls"), detail="updated", old=((("block", "ls", "--json"), "-o json"),)),
    "block rm": Verb(("block", "rm", "string/greeting"), json=False, detail="store.db"),
    "variable set": Verb(("variable", "set", "new", "hello"), json=False, detail="store.db"),
    "variable get": Verb(("variable", "get", "region"), detail="store.db"),
    "variable ls": Verb(
        ("variable", "ls"), detail="updated", old=((("variable", "ls", "--json"), "-o json"),)
    ),
    "variable rm": Verb(("variable", "rm", "region"), json=False, detail="store.db"),
    "init": Verb(("init", "--recipe", "local"), detail="name = "),
    "recipe ls": Verb(("recipe", "ls"), detail="fields", old=((("recipe", "ls", "--json"), "-o json"),)),
    "flows register": Verb(("flows", "register", "flows"), detail="who: string"),
    "flows ls": Verb(
        ("flows", "ls"),
        before=(("flows", "register", "flows", "-q"),),
        detail="who: string",
        old=((("flows", "ls", "--json"), "-o json"),),
    ),
    "deploy": Verb(
        ("deploy", "-n", "a"),
        detail="inputs:",
        old=(
            (("deploy", "-n", "a", "--output", "spec.json"), "--output-file spec.json"),
            (("deploy", "-n", "a", "--output=spec.json"), "--output-file spec.json"),
            (("deploy", "-n", "a", "-v", "image=org/app:1"), "-jv image=org/app:1"),
            (("deploy", "-n", "a", "-vimage=org/app:1"), "-jv image=org/app:1"),
            (("deploy", "-n", "a", "-v", '{"env": {"A": "1"}}'), '-jv {"env": {"A": "1"}}'),
        ),
    ),
    "execute": Verb(("execute", "-d", "a"), before=DEPLOYED, detail="inputs:"),
    "prefect-pull-and-run": Verb((), json=False, runnable=False),
}


def _leaves(
    group: click.Group, ctx: click.Context, prefix: str = ""
) -> t.Iterator[tuple[str, click.Command]]:
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None, name
        if isinstance(command, click.Group):
            yield from _leaves(command, click.Context(command, parent=ctx), f"{prefix}{name} ")
        else:
            yield f"{prefix}{name}", command


def _commands() -> dict[str, click.Command]:
    from stepengine.cli import cli

    return dict(_leaves(cli, click.Context(cli)))


def _option(command: click.Command, name: str) -> click.Option | None:
    found = [p for p in command.params if isinstance(p, click.Option) and p.name == name]
    return found[0] if found else None


@pytest.fixture()
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "prefect.yaml").write_text(PREFECT_YAML.replace("{directory}", str(tmp_path)))
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "hello.py").write_text(FLOW)
    monkeypatch.chdir(tmp_path)
    assert main(["block", "set", "string/greeting", "--value", "hello there", "-q"]) == 0
    assert main(["variable", "set", "region", "eu-west-1", "-q"]) == 0
    return tmp_path


def _run(
    capfd: pytest.CaptureFixture[str], verb: Verb, *extra: str, argv: t.Sequence[str] = ()
) -> tuple[int, str, str]:
    for before in verb.before:
        assert main(list(before)) == 0, capfd.readouterr()
    capfd.readouterr()
    code = main([*(argv or verb.argv), *extra])
    out, err = capfd.readouterr()
    return code, out, err


RUNNABLE = [name for name, verb in VERBS.items() if verb.runnable]
WITH_JSON = [name for name in RUNNABLE if VERBS[name].json]
OLD = [(name, argv, new) for name, verb in VERBS.items() for argv, new in verb.old]


def test_every_registered_verb_has_a_row() -> None:
    assert sorted(_commands()) == sorted(VERBS)


@pytest.mark.parametrize("name", sorted(VERBS))
def test_every_verb_declares_the_convention(name: str) -> None:
    command = _commands()[name]
    assert isinstance(command, Command)
    for param, spelled in (("quiet", ["-q", "--quiet"]), ("verbose", ["-v", "--verbose"])):
        option = _option(command, param)
        assert option is not None and option.is_flag and option.opts == spelled, (name, param)
    output = _option(command, "output")
    if VERBS[name].json:
        assert output is not None and output.opts == ["-o", "--output"], name
        assert isinstance(output.type, click.Choice) and "json" in output.type.choices
    else:
        assert output is None, f"{name}: --output is a format; this verb prints no data"
    # no other option takes a convention spelling for something else
    others = [o for p in command.params if p.name not in ("output", "quiet", "verbose") for o in p.opts]
    assert not {"-o", "--output", "-q", "--quiet", "-v", "--verbose", "--json"} & set(others) or name in (
        "block set",  # --json JSON: the block's data (an input, not a format)
        "variable set",  # --json: VALUE is JSON (an input, not a format)
    ), (name, others)


@pytest.mark.parametrize("name", WITH_JSON)
def test_output_json_is_one_document_alone_on_stdout(
    name: str, project: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _run(capfd, VERBS[name], "-o", "json")
    assert code == 0, err
    json.loads(out)  # the whole of stdout: nothing else printed there


@pytest.mark.parametrize("name", RUNNABLE)
def test_quiet_prints_only_errors_and_data(
    name: str, project: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _run(capfd, VERBS[name], "-q")
    assert (code, err) == (0, "")
    if VERBS[name].json:
        code, out, err = _run(capfd, VERBS[name], "-q", "-o", "json", argv=_again(name))
        # the flow's own output is the flow's: with -o json it goes to stderr, leaving stdout to the JSON
        assert (code, err) == (0, "hello you\n" if name == "execute" else "")
        json.loads(out)


def _again(name: str) -> tuple[str, ...]:
    """The verb's command line when it runs a second time in the same project."""
    return {"block rm": ("block", "rm", "string/new"), "variable rm": ("variable", "rm", "new")}.get(
        name, VERBS[name].argv
    )


@pytest.mark.parametrize("name", RUNNABLE)
def test_verbose_adds_detail(name: str, project: Path, capfd: pytest.CaptureFixture[str]) -> None:
    verb = VERBS[name]
    assert verb.detail is not None
    code, out, err = _run(capfd, verb)
    assert code == 0, err
    assert verb.detail not in out + err
    for setup in (
        ("block", "set", "string/greeting", "--value", "hello there", "-q"),
        ("variable", "set", "region", "eu-west-1", "-q"),
    ):
        assert main(list(setup)) == 0  # put back what a first run removed
    code, out, err = _run(capfd, verb, "-v")
    assert code == 0, err
    assert verb.detail in out + err


@pytest.mark.parametrize(("name", "argv", "new"), OLD)
def test_old_spellings_work_and_warn(
    name: str, argv: tuple[str, ...], new: str, project: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _run(capfd, VERBS[name], argv=argv)
    assert code == 0, err
    warning = f"is deprecated: use {new} (the old spelling goes in the next release)"
    assert warning in err
    if new == "-o json":
        json.loads(out)
    elif new.startswith("--output-file"):
        assert out == ""
        assert json.loads((project / "spec.json").read_text())["name"] == "a"
    else:  # a job variable
        spec = json.loads(out)
        assert spec["job_variables"] == ({"image": "org/app:1"} if "image" in new else {"env": {"A": "1"}})


def test_execute_json_alone_on_stdout_when_the_flow_output_is_relayed_masked(
    project: Path, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a secret known, the flow's output is relayed through the masker (not inherited): it must
    go to stderr with -o json too."""
    assert main(list(DEPLOYED[0])) == 0
    monkeypatch.setenv("STEPENGINE_SECRET_ENV", "DEMO_TOKEN")
    monkeypatch.setenv("DEMO_TOKEN", "s3cr3t-word")
    execute = Verb(("execute", "-d", "a", "--param", "who=s3cr3t-word", "-o", "json"))
    code, out, err = _run(capfd, execute)
    assert code == 0, err
    assert json.loads(out)["exit_code"] == 0
    assert "hello ***" in err


def test_deploy_v_before_an_entrypoint_is_verbose(project: Path, capfd: pytest.CaptureFixture[str]) -> None:
    """-v followed by an entrypoint (a path that exists, no KEY=) is --verbose, not a job variable."""
    code, out, err = _run(capfd, VERBS["deploy"], argv=("deploy", "-v", "flows/hello.py:hello", "-n", "b"))
    assert code == 0, err
    assert "deprecated" not in err and "inputs:" in err
    assert json.loads(out)["job_variables"] == {}


def test_deploy_output_json_is_the_format_not_a_file(
    project: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """issue 15: `deploy --output json` wrote a file named json."""
    code, out, err = _run(capfd, VERBS["deploy"], argv=("deploy", "-n", "a", "--output", "json"))
    assert code == 0, err
    assert json.loads(out)["name"] == "a"
    assert not (project / "json").exists()
    assert "deprecated" not in err


def test_old_spellings_are_not_read_inside_values(project: Path, capfd: pytest.CaptureFixture[str]) -> None:
    """A value that looks like an old spelling is a value (here --description's)."""
    code, out, err = _run(capfd, VERBS["deploy"], argv=("deploy", "-n", "a", "--description", "--output"))
    assert code == 0, err
    assert json.loads(out)["description"] == "--output"
    assert "deprecated" not in err


def test_deploy_text_names_the_work_pool(project: Path, capfd: pytest.CaptureFixture[str]) -> None:
    """`deploy -o text` prints one line per deployment with the pool the spec holds."""
    argv = ("deploy", "-n", "a", "-p", "process", "--cron", "0 3 * * *", "-o", "text")
    code, out, err = _run(capfd, VERBS["deploy"], argv=argv)
    assert code == 0, err
    assert out == "hello/a  entrypoint flows/hello.py:hello  pool process  1 schedule\n"
