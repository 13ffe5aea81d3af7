#!/usr/bin/env bash
# Runs the whole test suite (unit, simulation, Redis integration, network-namespace
# end-to-end) after its own set-up, and ends with a line "N passed, N failed, N skipped".
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
set +e
report=.vitest-report.json
rm -f "$report"
npx vitest run --reporter=default --reporter=json --outputFile="$report" "$@"
status=$?
if [ -s "$report" ]; then
  node -e '
    const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    const skipped = (r.numPendingTests ?? 0) + (r.numTodoTests ?? 0);
    console.log(`${r.numPassedTests} passed, ${r.numFailedTests} failed, ${skipped} skipped`);
    if (r.numTotalTests === 0) process.exit(1);
  ' "$report" || status=1
else
  echo "0 passed, 1 failed"
  status=1
fi
exit "$status"
