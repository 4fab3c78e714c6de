"""Side-by-side benchmarks: stepengine against Prefect, on this machine, in one run.

    python -m benchmarks                       # every scenario, 5 rounds, writes RESULTS.md + ratios.png
    python -m benchmarks --scenarios cold,chain --rounds 9
    python -m benchmarks --engines stepengine --stepengine-python "$(which python3)" --size tiny

Each engine runs in its own venv, both with bytecode compiled (``.bench/``, ignored by git):
``stepengine-venv`` gets this checkout installed (not editable) on every harness run; ``prefect-venv``
(``prefect prefect-docker s3fs 'fastapi<0.151'``) is created once, under a lock file, unless someone
already made it. Every timed run is a fresh process started by this harness (wall time from spawn to
exit, peak RSS from ``wait4``), and the engines take turns (A B A B ...) so that drifting machine load
hits both alike. Each engine has one untimed warm-up run per scenario first (the OS file cache; for
stepengine also its on-disk caches, which is the steady state of a worker); the ``cold`` scenario
also measures stepengine with an empty ``STEPENGINE_HOME`` on every run. The ``docker`` scenario runs
stepengine from a third venv, ``stepengine-docker-venv`` (this checkout plus the ``docker`` extra; see
``ensure_stepengine_docker_venv`` for why it is separate).

Servers (moto S3, git smart-HTTP, a private dockerd without bridge or iptables plus a registry, a
Prefect server) come from ``testkit/`` (shared with the tests), bind 127.0.0.1 only, and run only while
their own scenarios do. A scenario whose prerequisite is missing here is skipped, with the reason in
RESULTS.md.

The harness is split by role: ``environments`` (the venvs), ``measurement`` (one timed process, rounds,
engines alternating), ``scenarios/`` (what is timed, one module per area; ``scenarios/__init__.py``
lists them), ``report`` (tables, RESULTS.md, the plot); this module is the command line.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
import typing as t
from pathlib import Path

from benchmarks.environments import ensure_prefect_venv, ensure_stepengine_venv, log
from benchmarks.measurement import Result, Scenario, Skip, run_scenario
from benchmarks.report import plot, ratio, report, summary, write_results
from benchmarks.scenarios import SCENARIOS
from benchmarks.scenarios.context import Context

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def run_all(scenarios: list[Scenario], results: list[Result], ctx: Context, rounds: int) -> None:
    """Run ``scenarios`` one after the other, appending to ``results`` and logging each summary."""
    for scenario in scenarios:
        log(f"{scenario.title} ...")
        started = time.monotonic()
        if scenario.same_runs_as:
            source = next(r for r in results if r.scenario.key == scenario.same_runs_as)
            result = Result(scenario, source.samples, source.error, source.load)
        else:
            load_before = os.getloadavg()[0]
            result = run_scenario(scenario, rounds, ctx.tiny)
            result.load = (load_before, os.getloadavg()[0])
        results.append(result)
        value = ratio(result)
        line = ", ".join(f"{k}: {summary(v, scenario.rss)}" for k, v in result.samples.items())
        log(
            f"  {line}"
            + (f"; ratio {value:.2f}" if value else "")
            + f"; {time.monotonic() - started:.0f} s"
            + (f"\n  FAILED: {result.error}" if result.error else "")
        )


# --------------------------------------------------------------------------------------------------


def main(argv: t.Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--scenarios", default=",".join(SCENARIOS), help=f"comma-separated: {','.join(SCENARIOS)}"
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--engines", default="stepengine,prefect,floor", help="comma-separated: stepengine,prefect,floor"
    )
    parser.add_argument(
        "--size", choices=["full", "tiny"], default="full", help="tiny: a few steps/files (smoke test)"
    )
    parser.add_argument(
        "--stepengine-python",
        type=Path,
        help="use this interpreter's stepengine instead of .bench/stepengine-venv",
    )
    parser.add_argument("--results", type=Path, default=HERE / "RESULTS.md")
    parser.add_argument("--plot", type=Path, default=HERE / "ratios.png")
    parser.add_argument("--no-plot", action="store_true")
    parser.add_argument("--work", type=Path, help="scratch directory (default: a new temporary one)")
    args = parser.parse_args(argv)

    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    keys = [k.strip() for k in args.scenarios.split(",") if k.strip()]
    unknown = [k for k in keys if k not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(unknown)}")
    sys.path.insert(0, str(ROOT))  # testkit (the servers), when run from elsewhere
    stepengine_python = args.stepengine_python or ensure_stepengine_venv()
    prefect_python = ensure_prefect_venv() if "prefect" in engines else None
    base_env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "STEPENGINE_"))}
    base_env.pop("PYTHONPATH", None)
    with contextlib.ExitStack() as stack:
        work = args.work or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="stepengine-bench-")))
        ctx = Context(
            work,
            args.size,
            engines,
            Path(stepengine_python),
            prefect_python,
            base_env,
            stepengine_given=args.stepengine_python is not None,
        )
        results: list[Result] = []
        skipped: dict[str, str] = {}
        for key in keys:
            with contextlib.ExitStack() as servers:  # a scenario's servers stop before the next one runs
                started = time.monotonic()
                try:
                    scenarios = SCENARIOS[key](ctx, servers)
                except Skip as exc:
                    skipped[key] = str(exc)
                    log(f"{key}: skipped: {exc}")
                    continue
                log(f"{key}: set up in {time.monotonic() - started:.0f} s (untimed: inputs, venvs, servers)")
                run_all(scenarios, results, ctx, args.rounds)
        section = report(results, skipped, ctx, args.rounds)
    write_results(args.results, section)
    if not args.no_plot:
        plot(results, args.plot)
    print(section)
    return 1 if any(r.error for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
