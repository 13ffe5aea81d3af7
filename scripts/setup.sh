#!/usr/bin/env bash
# Installs what redis-ha's lab and tests need on a Debian/Ubuntu machine (as root):
# Debian packages (Redis, etcd, iproute2, arping, ndptool), the npm dependencies, the build
# (the product into dist/, the lab and the benchmark into dist-tools/).
# Idempotent: a second run only checks. Sourced by scripts/lab.sh and scripts/test.sh
# (so the PATH to a fallback Node.js carries over).
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(redis-server redis-tools redis-sentinel etcd-server etcd-client keepalived nftables iproute2 iputils-arping libndp-tools procps ca-certificates systemd systemd-container debootstrap debian-archive-keyring python3 make g++)

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
  # an init system: the lab starts its own servers inside network namespaces. One made
  # here is removed right after apt-get, whatever its outcome, by this subshell's own
  # EXIT trap and again explicitly: never by a trap of the calling shell, because
  # scripts/lab.sh sources this file and then execs node, and bash runs no EXIT trap on
  # exec (the file would stay, and every later apt-get install would silently start no
  # service). test/install/setup-policy.test.ts runs this with a fake apt-get.
  (
    made_policy=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
      trap 'rm -f /usr/sbin/policy-rc.d' EXIT
      printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
      made_policy=1
    fi
    rc=0
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || rc=$?
    if [ "$made_policy" -eq 1 ]; then rm -f /usr/sbin/policy-rc.d; fi
    exit "$rc"
  ) || { echo "redis-ha setup: apt-get install ${missing[*]} failed" >&2; exit 1; }
  # etcd-server enables its own etcd.service on 127.0.0.1:2379 (a one-member cluster with
  # its data in /var/lib/etcd). The tests and the lab start their own members (own ports,
  # own data dirs) and must never talk to or depend on that one, so a service this run
  # installed is disabled and masked: it does not start now nor at the next boot. A host
  # that had etcd-server before keeps its service as it was.
  if [[ " ${missing[*]} " == *" etcd-server "* ]] && command -v systemctl >/dev/null 2>&1; then
    systemctl stop etcd.service >/dev/null 2>&1 || true
    systemctl disable etcd.service >/dev/null 2>&1 || true
    systemctl mask etcd.service >/dev/null 2>&1 || true
  fi
fi

# Node.js >= 20.19 (vite 8, used by vitest, needs it). Debian/Ubuntu's own nodejs is
# older on current releases, so fall back to the official build that the npm registry
# ships as the node-linux-<arch> package, installed under /opt/redis-ha-node.
node_ok() {
  command -v node >/dev/null 2>&1 &&
    node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a===20&&b>=19)?0:1)'
}
if ! node_ok && [ -x /opt/redis-ha-node/node_modules/.bin/node ]; then
  export PATH="/opt/redis-ha-node/node_modules/.bin:$PATH"
fi
if ! node_ok; then
  command -v npm >/dev/null 2>&1 || { apt-get update -qq; apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null; }
  case "$(uname -m)" in x86_64) arch=x64 ;; aarch64) arch=arm64 ;; *) echo "redis-ha setup: no Node.js 22 build for $(uname -m)" >&2; exit 1 ;; esac
  echo "redis-ha setup: installing Node.js 22 (node-linux-$arch) under /opt/redis-ha-node"
  npm install --prefix /opt/redis-ha-node --no-audit --no-fund --loglevel=error "node-linux-$arch@22"
  mkdir -p /opt/redis-ha-node/node_modules/.bin
  ln -sf "../node-linux-$arch/bin/node" /opt/redis-ha-node/node_modules/.bin/node
  export PATH="/opt/redis-ha-node/node_modules/.bin:$PATH"
  node_ok || { echo "redis-ha setup: Node.js >= 20.19 is needed, found $(node --version 2>&1)" >&2; exit 1; }
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
npm run --silent build
npm run --silent build:tools
