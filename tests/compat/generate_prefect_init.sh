#!/bin/bash
# Writes Prefect VERSION's `prefect init --recipe R` output for every recipe R into
# /tmp/cs/gen/out/VERSION/R.yaml (see README.md here); copy those into prefect_init/VERSION/.
# usage: EXCLUDE=YYYY-MM-DD generate_prefect_init.sh VERSION [extra requirement pins...]
# EXCLUDE (optional) resolves Prefect's dependencies as of that date (uv --exclude-newer), which old
# releases need.
set -u
V=$1; shift
VENV=/tmp/cs/venvs/$V
OUT=/tmp/cs/gen/out/$V
LOG=/tmp/cs/gen/log-$V.txt
mkdir -p /tmp/cs/venvs $OUT
{
if [ ! -x $VENV/bin/prefect ]; then
  uv venv -q -p python3.11 $VENV && VIRTUAL_ENV=$VENV uv pip install -q "prefect==$V" ${EXCLUDE:+--exclude-newer $EXCLUDE} "$@" || { echo INSTALL-FAILED; exit 1; }
fi
for R in $(ls $VENV/lib/python3.11/site-packages/prefect/deployments/recipes); do
  [ -f $VENV/lib/python3.11/site-packages/prefect/deployments/recipes/$R/prefect.yaml ] || continue
  W=/tmp/prefect-init/$R
  rm -rf /tmp/prefect-init; mkdir -p $W; cd $W
  git init -q -b main . && git remote add origin https://github.com/org/repo.git
  export PREFECT_HOME=/tmp/cs/gen/home-$V PREFECT_API_URL=http://127.0.0.1:9/api PREFECT_SERVER_ANALYTICS_ENABLED=false PREFECT_CLI_PROMPT=false
  for CMD in init "project init"; do
  $VENV/bin/prefect $CMD --recipe $R --field bucket=my-bucket --field container=my-container --field image_name=registry.example.com/org/app --field tag=latest </dev/null > $OUT/$R.stdout 2>&1
  echo "$R ($CMD) rc=$?"
  [ -f prefect.yaml ] && break
  done
  cp prefect.yaml $OUT/$R.yaml 2>/dev/null || echo "$R: no prefect.yaml"
  cd /tmp
done
} > $LOG 2>&1
echo done $V
