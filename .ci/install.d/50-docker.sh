#!/usr/bin/env bash
# Docker engine, registry and helpers for tests/builtin_steps/test_docker.py (issue 5).
# dockerd and docker-registry are started by testkit/docker_engine.py on 127.0.0.1 with
# --bridge=none (no docker0), so nothing here starts a daemon or creates a network.
set -euo pipefail

need=()
for pkg in docker.io docker-registry apache2-utils busybox-static iproute2; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || need+=("$pkg")
done

if [ "${#need[@]}" -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    # The packages' scripts would start docker.service (which creates docker0, 172.17.0.1) and
    # docker-registry.service (on :5000): forbid service starts while installing (Debian's policy-rc.d).
    (
        if [ ! -e /usr/sbin/policy-rc.d ]; then
            printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
            chmod +x /usr/sbin/policy-rc.d
            trap 'rm -f /usr/sbin/policy-rc.d' EXIT
        fi
        apt-get update -qq
        # --no-install-recommends: no containerd shims we do not use, no bridge-utils, no cgroupfs-mount
        apt-get install -y -qq --no-install-recommends "${need[@]}"
    )
fi

# The Debian package enables docker.service and docker-registry.service; on a machine with systemd
# those would start a docker0 bridge and a registry on :5000. Keep them off; the fixtures run their own.
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    systemctl disable --now docker.service docker.socket docker-registry.service >/dev/null 2>&1 || true
fi
if ip link show docker0 >/dev/null 2>&1; then
    ip link del docker0
fi

python3 -c 'import docker' 2>/dev/null || python3 -m pip install -q 'docker>=7.1'
