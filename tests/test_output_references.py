"""Step outputs passed by a whole-value reference reach the next step as the very same object (no copy).

A large output then costs its memory once, whatever the number of steps it passes through (README
"Memory"); a reference inside longer text, a block or a variable is another matter (text is built,
blocks and variables are copied per reference, as Prefect does).
"""

from __future__ import annotations

import textwrap

import stepengine


def test_a_whole_value_reference_passes_the_output_itself() -> None:
    config = stepengine.loads(
        textwrap.dedent("""\
        pull:
          - make:
              id: make
          - by_id:
              id: by_id
              items: "{{ make.items }}"
          - flat:
              items: "{{ items }}"
          - nested:
              settings:
                all: ["{{ make.items }}"]
        """),
        file="prefect.yaml",
    )
    produced = {"items": [f"line {i}" for i in range(1000)], "table": {"a": [1, 2]}}
    seen: list[object] = []
    steps = {
        "make": lambda: produced,
        "by_id": lambda items: seen.append(items) or {},
        "flat": lambda items: seen.append(items) or {},
        "nested": lambda settings: seen.append(settings["all"][0]) or {},
    }
    outputs = stepengine.run(config, steps=steps)
    assert len(seen) == 3 and all(value is produced["items"] for value in seen)
    assert outputs["make"]["items"] is produced["items"]
