#!/usr/bin/env bash
# A local wheel folder for tests/test_newcomer.py (issue 15): the README's first command is run in a
# fresh venv with PIP_NO_INDEX and this folder as its only source, so the test needs no network.
# Holds stepengine's runtime dependencies and its build backend (hatchling, for `pip install .`).
set -euo pipefail
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
WHEELHOUSE="${STEPENGINE_WHEELHOUSE:-/opt/stepengine-ci/wheelhouse}"
mkdir -p "$WHEELHOUSE"
python3 -m pip download -q --only-binary=:all: -d "$WHEELHOUSE" \
    'PyYAML>=6.0' 'Jinja2>=3.1' 'jsonschema>=4.18' 'click>=8.1' 'ahocorasick-rs>=1.0' 'hatchling>=1.27' 'rich>=13'
