#!/usr/bin/env bash
# Builds the examples once and runs each against a running broker, stopping at
# the first failure. Each example checks its own outcome and exits non-zero
# when it is wrong.
#
#   examples/run_all.sh                      # broker on 127.0.0.1:5672
#   AMQP_URL=amqp://guest:guest@127.0.0.1:5673/%2f examples/run_all.sh
#   EXAMPLE_TIMEOUT=30 examples/run_all.sh hello_world rpc   # only these
#
# Prints one line per example, then "N passed, M failed". Exit status is 0
# only if every example passed.
set -uo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export AMQP_URL="${AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}"
timeout_secs="${EXAMPLE_TIMEOUT:-60}"
bin_dir="${CARGO_TARGET_DIR:-$root/target}/debug/examples"

if [ "$#" -gt 0 ]; then
    examples=("$@")
else
    examples=()
    for source in "$root"/examples/*.rs; do
        examples+=("$(basename "$source" .rs)")
    done
fi

echo "building examples..."
if ! (cd "$root" && cargo build --quiet --examples); then
    echo "build failed"
    echo "0 passed, ${#examples[@]} failed"
    exit 1
fi

echo "running ${#examples[@]} examples against ${AMQP_URL}"
passed=0
failed=0
for name in "${examples[@]}"; do
    log="$(mktemp "${TMPDIR:-/tmp}/warren-example-$name.XXXXXX")"
    start=$(date +%s%N)
    timeout --kill-after=5 "$timeout_secs" "$bin_dir/$name" >"$log" 2>&1
    status=$?
    tenths=$((($(date +%s%N) - start) / 100000000))
    elapsed="$((tenths / 10)).$((tenths % 10))"
    if [ "$status" -eq 0 ]; then
        passed=$((passed + 1))
        echo "PASS $name (${elapsed}s)"
        rm -f "$log"
    else
        failed=$((failed + 1))
        if [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; then
            echo "FAIL $name (timed out after ${timeout_secs}s)"
        else
            echo "FAIL $name (exit $status, ${elapsed}s)"
        fi
        sed 's/^/    /' "$log"
        rm -f "$log"
        break
    fi
done

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
