"""Alias expansion at the limit: time and peak memory of the largest file the loader accepts.

``python -m benchmarks.alias_limits [--rounds N] [--python PY]`` prints a markdown table. Each row is
one ``stepengine validate`` in a fresh process (its own ``STEPENGINE_HOME``, so the first run is
cold and the second reads the parse cache); wall time and the child's peak RSS (``wait4``).

Files (``stepengine.loader.MAX_ALIAS_NODES`` decides what is accepted):

- ``nested-at-limit``: the classic bomb shape (each level a list of 9 aliases to the level below;
  4 levels, then as many more aliases to level 3 as stay within the limit): the largest expansion a
  file this small can reach.
- ``merge-at-limit``: the legitimate shape: ``definitions:`` with defaults (a work pool with 100
  environment variables) and a pull step, merged (``<<: *defaults``, ``pull: *pull``) into as many
  deployments as fit under the limit.
- ``nested-9-levels`` (a 9-level bomb, ~387 million nodes unbounded): refused; how fast.
- ``no-alias-1mb``: a 1 MB file without aliases, to compare the cost per node.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def nested(levels: int, extra: int = 0) -> str:
    """``levels`` levels of 9 aliases each, then one list of ``extra`` aliases to the level below the
    top (to come as close to the limit as the shape allows)."""
    lines = ["pull: []", "definitions:", '  a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    for level in range(1, levels + 1):
        lines.append(f"  a{level}: &a{level} [" + ", ".join([f"*a{level - 1}"] * 9) + "]")
    if extra:
        lines.append("  top: [" + ", ".join([f"*a{levels - 1}"] * extra) + "]")
    return "\n".join(lines) + "\n"


def merges(deployments: int) -> str:
    lines = [
        "definitions:",
        "  defaults: &defaults",
        "    work_pool: {name: pool, job_variables: {image: org/app, env: {"
        + ", ".join(f"VAR_{i}: '{i}'" for i in range(100))
        + "}}}",
        "    schedules: [{cron: '0 * * * *'}]",
        "  pull: &pull",
        "    - set_working_directory: {directory: /srv/app}",
        "pull: *pull",
        "deployments:",
    ]
    for index in range(deployments):
        lines += [
            f"  - name: d{index}",
            "    <<: *defaults",
            f"    entrypoint: flows/f.py:f{index}",
            "    pull: *pull",
        ]
    return "\n".join(lines) + "\n"


def no_alias(size: int) -> str:
    lines = ["pull:"]
    index = 0
    while sum(len(line) + 1 for line in lines) < size:
        lines.append(f"  - set_working_directory: {{directory: /srv/app{index}}}")
        index += 1
    return "\n".join(lines) + "\n"


def accepted(text: str) -> bool:
    from stepengine.errors import YAMLSyntaxError
    from stepengine.loader import parse_document

    try:
        parse_document(text)
    except YAMLSyntaxError as exc:
        if "aliases in this document" in str(exc):
            return False
        raise
    return True


def largest(make: callable, low: int, high: int) -> int:
    """The largest n in [low, high) with make(n) accepted (accepted is monotonic in n)."""
    while high - low > 1:
        middle = (low + high) // 2
        if accepted(make(middle)):
            low = middle
        else:
            high = middle
    return low


def measure(python: str, path: Path, home: Path) -> tuple[float, int, int]:
    """(seconds, peak RSS in KiB, exit code) of one ``stepengine validate``."""
    env = {**os.environ, "STEPENGINE_HOME": str(home), "PYTHONPATH": str(ROOT)}
    started = time.perf_counter()
    child = subprocess.Popen(
        [python, "-m", "stepengine", "validate", str(path)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    _, status, usage = os.wait4(child.pid, 0)
    elapsed = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    return elapsed, usage.ru_maxrss, child.returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--make", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.make:  # in a child process, so that this one stays small: a child inherits the peak RSS
        # its parent had when it forked, and wait4 would report that instead of its own
        sys.path.insert(0, str(ROOT))
        from stepengine.loader import MAX_ALIAS_NODES

        files = {
            "nested-at-limit": nested(4, largest(lambda n: nested(4, n), 0, 100)),
            "merge-at-limit": merges(largest(merges, 1, MAX_ALIAS_NODES)),
            "nested-9-levels": nested(9),
            "no-alias-1mb": no_alias(1_000_000),
        }
        for name, text in files.items():
            Path(args.make, name + ".yaml").write_text(text, encoding="utf-8")
        print(MAX_ALIAS_NODES)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        limit = subprocess.run(
            [args.python, "-m", "benchmarks.alias_limits", "--make", tmp],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        files = {
            name: Path(tmp, name + ".yaml").read_text(encoding="utf-8")
            for name in ("nested-at-limit", "merge-at-limit", "nested-9-levels", "no-alias-1mb")
        }
        return _report(args, int(limit), files, tmp)


def _report(args: argparse.Namespace, limit: int, files: dict[str, str], tmp: str) -> int:
    print(f"MAX_ALIAS_NODES = {limit:,}; {args.rounds} rounds, median (max)\n")
    print(
        "| file | bytes | exit | cold: time | cold: peak RSS | cached: time | cached: peak RSS | parse cache |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, text in files.items():
        path = Path(tmp, name + ".yaml")
        cold: list[tuple[float, int]] = []
        warm: list[tuple[float, int]] = []
        codes: set[int] = set()
        cache = 0
        for round_ in range(args.rounds):
            home = Path(tmp, f"home-{name}-{round_}")
            for runs in (cold, warm):
                seconds, rss, code = measure(args.python, path, home)
                runs.append((seconds, rss))
                codes.add(code)
            entries = home / "cache" / "parsed-documents"
            cache = sum(f.stat().st_size for f in entries.iterdir()) if entries.is_dir() else 0
        print(
            f"| {name} | {len(text.encode()):,} | {'/'.join(map(str, sorted(codes)))} | {_cell(cold, 0)} | "
            f"{_cell(cold, 1)} | {_cell(warm, 0)} | {_cell(warm, 1)} | {cache / 1e6:.1f} MB |"
        )
    return 0


def _cell(runs: list[tuple[float, int]], index: int) -> str:
    values = [r[index] for r in runs]
    if index == 0:
        return f"{statistics.median(values) * 1000:.0f} ms ({max(values) * 1000:.0f})"
    return f"{statistics.median(values) / 1024:.0f} MiB ({max(values) / 1024:.0f})"


if __name__ == "__main__":
    sys.exit(main())
