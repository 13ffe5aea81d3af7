#!/usr/bin/env bash
# The built-in lab: two simulated Redis hosts and a client in network namespaces on
# this machine, real Redis, real redis-ha daemons, the VIP, a writer through it, and a
# failover shown live; by default a one-member etcd on the client host is the quorum's
# witness. Options are passed on (e.g. --fault partition, --quorum none, --profile fast;
# --help lists them).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
exec node dist-tools/tools/lab/demo.js "$@"
