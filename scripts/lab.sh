#!/usr/bin/env bash
# The built-in lab: two simulated Redis hosts and a client in network namespaces on
# this machine, real Redis, real redis-ha daemons, the VIP, a writer through it, and a
# failover shown live. Options are passed on (e.g. --fault link-cut --profile fast).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
exec node dist-tools/tools/lab/demo.js "$@"
