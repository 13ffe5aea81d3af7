#!/usr/bin/env bash
# Installs what redis-ha's lab and tests need on a Debian/Ubuntu machine (as root):
# Debian packages (Redis, iproute2, arping, ndptool), the npm dependencies, the build.
# Idempotent: a second run only checks. Used by scripts/lab.sh, scripts/test.sh, .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(redis-server redis-tools iproute2 iputils-arping libndp-tools procps ca-certificates)

if [ "$(id -u)" -ne 0 ]; then
  echo "redis-ha setup: run as root (it installs Debian packages and creates network namespaces)" >&2
  exit 1
fi

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "redis-ha setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # policy-rc.d keeps the package's own redis-server service from starting on hosts with
  # an init system: the lab starts its own servers inside network namespaces.
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v node >/dev/null 2>&1; then
  echo "redis-ha setup: installing Node.js from Debian"
  apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi
node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 20 ]; then
  echo "redis-ha setup: Node.js >= 20 is needed, found $(node --version)" >&2
  exit 1
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
npm run --silent build
