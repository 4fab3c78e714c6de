#!/usr/bin/env bash
# Blob-storage test servers (issue 4): Azurite from npm (moto and gcp-storage-emulator come with the
# `dev` extra). testkit/azurite.py looks for it under /opt/stepengine-ci/azurite. The servers
# are started by the fixtures on 127.0.0.1 only; Azurite always runs with --disableTelemetry.
set -euo pipefail
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore

AZURITE_DIR=/opt/stepengine-ci/azurite
AZURITE_VERSION=3.35.0   # 3.37 needs node 22; Debian 12 CI has node 20 (or installs 18 from apt)

if ! command -v npm >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends nodejs npm
fi
if [ ! -x "$AZURITE_DIR/node_modules/.bin/azurite-blob" ] \
    || ! grep -q "\"version\": \"$AZURITE_VERSION\"" "$AZURITE_DIR/node_modules/azurite/package.json"; then
    mkdir -p "$AZURITE_DIR"
    npm install --silent --no-audit --no-fund --prefix "$AZURITE_DIR" "azurite@$AZURITE_VERSION"
fi

# The `dev` extra already lists these; install them when this script runs on its own.
python3 -c 'import s3fs, gcsfs, adlfs, pathspec, moto.server, gcp_storage_emulator' 2>/dev/null \
    || python3 -m pip install -q s3fs gcsfs adlfs pathspec 'moto[server]>=5.2.5' gcp-storage-emulator
