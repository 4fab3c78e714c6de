"""``pip_install_requirements``: install a requirements file with pip or uv, optionally into a venv."""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import sys
import sysconfig

from stepengine.step_api import StepError, find_python, get_logger, run_process, venv_python

from . import _pip_settings

_HINT = "check the requirements file and the package index settings (pip.conf, PIP_INDEX_URL)"
INSTALLERS = ("auto", "uv", "pip")
#: the process-wide choice for ``installer: auto`` (``pip`` gives Prefect's behaviour everywhere)
INSTALLER_ENV = "STEPENGINE_PIP_INSTALLER"


def pip_install_requirements(
    directory: str | None = None,
    requirements_file: str = "requirements.txt",
    stream_output: bool = True,
    python: str | None = None,
    venv: str | None = None,
    create: bool = False,
    installer: str = "auto",
    compile_bytecode: bool | None = None,
) -> dict[str, str]:
    """Install ``requirements_file`` (relative to ``directory``); returns ``stdout`` and ``stderr``.

    Without ``python`` or ``venv`` this is Prefect's step: ``python -m pip install -r ...`` with the
    interpreter running the steps. With ``venv`` (a virtualenv, or a conda environment's prefix;
    relative to ``directory``) or ``python`` (an interpreter), the packages go into that environment
    instead, and the output also has ``python``: the environment's interpreter. ``create: true``
    makes the venv when it does not exist. ``installer``: ``uv`` (much faster), ``pip``, or ``auto``:
    uv when it is installed and every pip setting in effect (pip.conf, ``PIP_*``) can be passed on to
    it, so the result is what pip would install (bytecode compiled, as pip does); pip otherwise.
    ``STEPENGINE_PIP_INSTALLER=pip|uv|auto`` sets what ``auto`` means for the whole process.
    ``compile_bytecode``: write ``.pyc`` files of the installed packages (slower install, faster first
    import). Default: what the installer does by itself: pip (and ``auto``) compile unless pip's
    settings say otherwise (``PIP_NO_COMPILE``/``PIP_COMPILE``, ``compile``/``no-compile`` in pip.conf,
    read as pip reads them); ``installer: uv`` does not.

    Example (prefect.yaml)::

        pull:
          - prefect.deployments.steps.pip_install_requirements:
              directory: "{{ clone.directory }}"
              venv: .venv
              create: true
    """
    cwd = os.path.expanduser(directory) if directory else None
    if cwd is not None and not os.path.isdir(cwd):
        raise StepError(f"directory {directory!r} does not exist")
    path = os.path.join(cwd or os.getcwd(), requirements_file)
    if not os.path.isfile(path):
        raise StepError(f"requirements file {path} does not exist")
    installer = _installer(installer)
    if compile_bytecode is not None and not isinstance(compile_bytecode, bool):
        raise StepError(f"compile_bytecode must be true or false, not {compile_bytecode!r}")
    if python and venv:
        raise StepError("give python or venv, not both")

    if python is None and venv is None:
        uv, extra, env = _choose(
            installer, sys.prefix, compile_bytecode, in_venv=sys.prefix != sys.base_prefix, running=True
        )
        if uv is not None:
            argv = [uv, "pip", "install", "--python", sys.executable, *extra, "-r", requirements_file]
        else:
            argv = [sys.executable, "-m", "pip", "install", *extra, "-r", requirements_file]
        result = run_process(argv, cwd=cwd, env=env, stream_output=stream_output, hint=_HINT)
        return {"stdout": result.stdout.strip(), "stderr": result.stderr.strip()}

    if venv is not None:
        root = os.path.join(cwd or os.getcwd(), os.path.expanduser(venv))
        interpreter = venv_python(root)
        if not os.path.exists(root):
            if not create:
                raise StepError(f"environment {venv!r} does not exist", hint="add `create: true` to make it")
            _create_venv(
                root,
                _require_uv() if installer == "uv" else _find_uv() if installer == "auto" else None,
                cwd,
                stream_output,
            )
        elif not os.path.exists(interpreter):
            raise StepError(f"{venv!r} is not a virtual environment or conda prefix (no bin/python)")
    else:
        assert python is not None
        try:
            interpreter = find_python(python, base=cwd or os.getcwd())
        except LookupError as exc:
            raise StepError(str(exc)) from None
        root = os.path.dirname(os.path.dirname(interpreter))
    uv, extra, env = _choose(
        installer,
        root,
        compile_bytecode,
        in_venv=os.path.exists(os.path.join(root, "pyvenv.cfg")),
        running=False,
    )
    if uv is not None:
        argv = [uv, "pip", "install", "--python", interpreter, *extra, "-r", requirements_file]
    else:
        argv = [interpreter, "-m", "pip", "install", *extra, "-r", requirements_file]
    result = run_process(argv, cwd=cwd, env=env, stream_output=stream_output, hint=_HINT)
    return {"stdout": result.stdout.strip(), "stderr": result.stderr.strip(), "python": interpreter}


def _installer(installer: str) -> str:
    """The step's ``installer``, with ``auto`` as ``STEPENGINE_PIP_INSTALLER`` says."""
    if installer not in INSTALLERS:
        raise StepError(f"installer {installer!r} is not one of {', '.join(INSTALLERS)}")
    override = os.environ.get(INSTALLER_ENV, "").strip().lower()
    if installer != "auto" or not override:
        return installer
    if override not in INSTALLERS:
        raise StepError(f"{INSTALLER_ENV}={override!r} is not one of {', '.join(INSTALLERS)}")
    return override


def _choose(
    installer: str, prefix: str, compile_bytecode: bool | None, *, in_venv: bool, running: bool
) -> tuple[str | None, list[str], dict[str, str]]:
    """uv (its path) or pip (``None``) for an install into the environment at ``prefix``, the extra
    arguments of its ``install``, and the child's environment. ``running``: that is the running
    interpreter's. ``compile_bytecode``: ``None`` leaves it to the installer (pip reads its settings)."""
    env = dict(os.environ)
    env.pop("VIRTUAL_ENV", None)  # uv prefers an active venv over nothing: be explicit instead
    pip_flag = [] if compile_bytecode is None else ["--compile" if compile_bytecode else "--no-compile"]
    uv_flag = ["--compile-bytecode"] if compile_bytecode else []
    if installer != "auto":
        return (_require_uv(), uv_flag, env) if installer == "uv" else (None, pip_flag, env)
    log = get_logger()
    uv = _find_uv()
    plan = _auto_plan(uv, prefix, in_venv=in_venv, running=running)
    if plan.refusal is None and uv is not None:
        log.info(
            "installing with uv (%s)",
            "pip settings passed on: " + ", ".join(plan.passed)
            if plan.passed
            else "no pip settings uv cannot honour",
        )
        for key in [k for k in env if k.startswith("UV_") and k != "UV_CACHE_DIR"]:
            del env[key]  # pip's settings only, as pip would see them (--no-config: no uv.toml either)
        env.update(plan.env)
        # --compile-bytecode: pip writes .pyc files (unless its settings say not to); unsafe-best-match:
        # pip's choice among several indexes
        compiled = plan.compile if compile_bytecode is None else compile_bytecode
        return (
            uv,
            [
                "--no-config",
                *(["--compile-bytecode"] if compiled else []),
                "--index-strategy",
                "unsafe-best-match",
                *plan.args,
            ],
            env,
        )
    if uv is not None and not running and not _has_pip(prefix):
        # a venv without pip (``uv venv``): uv installed there before pip's settings were read; keep that
        log.info(
            "installing with uv, without pip's settings: %s, and the environment has no pip", plan.refusal
        )
        return uv, ["--compile-bytecode"] if compile_bytecode is not False else [], env
    log.info("installing with pip")
    log.debug("not uv: %s", plan.refusal)
    return None, pip_flag, env


def _auto_plan(uv: str | None, prefix: str, *, in_venv: bool, running: bool) -> _pip_settings.Translation:
    """What uv needs to install as pip would, or (``refusal``) why it cannot."""
    if uv is None:
        return _pip_settings.Translation(refusal="uv is not installed")
    refusal = _environment_refusal(in_venv) if running else None
    if refusal is not None:
        return _pip_settings.Translation(refusal=refusal)
    try:
        settings = _pip_settings.read(os.environ, prefix)
    except _pip_settings.Unreadable as exc:
        return _pip_settings.Translation(refusal=f"pip cannot read its configuration ({exc})")
    bindir = None if running else os.path.join(prefix, "bin")
    return _pip_settings.translate(
        settings, os.environ, in_venv=in_venv, uv_flags=_uv_flags(uv), bindir=bindir
    )


def _environment_refusal(in_venv: bool) -> str | None:
    """Why uv would not install into the running interpreter the way pip does, if it would not."""
    if not in_venv and os.path.exists(os.path.join(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED")):
        return "the interpreter is externally managed (PEP 668): pip's rules apply"
    paths = sysconfig.get_paths()
    if not all(os.access(paths[key], os.W_OK) for key in ("purelib", "platlib") if os.path.isdir(paths[key])):
        return "site-packages is not writable: pip would install into the user site instead"
    return None


def _has_pip(prefix: str) -> bool:
    return any(os.path.exists(os.path.join(prefix, "bin", name)) for name in ("pip", "pip3"))


@functools.lru_cache(maxsize=4)
def _uv_flags(uv: str) -> frozenset[str]:
    """The long flags ``uv pip install`` accepts (empty when uv cannot say)."""
    try:
        help_text = subprocess.run(
            [uv, "pip", "install", "--help"], capture_output=True, text=True, timeout=30, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return frozenset()
    return frozenset(re.findall(r"--[a-z][a-z-]*", help_text))


def _find_uv() -> str | None:
    found = shutil.which("uv")
    if found:
        return found
    sibling = os.path.join(os.path.dirname(sys.executable), "uv")
    return sibling if os.access(sibling, os.X_OK) else None


def _require_uv() -> str:
    uv = _find_uv()
    if uv is None:
        raise StepError("installer uv: uv is not installed", hint="pip install uv, or use installer: pip")
    return uv


def _create_venv(root: str, uv: str | None, cwd: str | None, stream_output: bool) -> None:
    if uv is not None:
        # --seed: pip inside too, so `installer: pip` and the user's own `pip` keep working
        argv = [uv, "venv", "--quiet", "--seed", "--python", sys.executable, root]
    else:
        argv = [sys.executable, "-m", "venv", root]
    run_process(argv, cwd=cwd, stream_output=stream_output, hint="could not create the virtual environment")
