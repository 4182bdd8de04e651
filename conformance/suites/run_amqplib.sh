#!/usr/bin/env bash
# Run the amqplib test suite (node --test) against a broker.
#
#   run_amqplib.sh [AMQP_URL] [LABEL] [-- extra node --test args / files]
#
#   AMQP_URL default amqp://guest:guest@127.0.0.1:5672 (the tests read $URL)
#   LABEL    result dir $SUITES_DIR/results/amqplib-LABEL (default "run")
#
# Source: the latest npm release, amqplib 2.3.1, ships no tests (its "files"
# allowlist excludes test/).  So the work tree is the newest GitHub snapshot
# of amqp-node/amqplib (commit f7503e5 = v2.0.1 + README; its test/ is the
# newest available) with the library files (lib/, channel_api.js,
# callback_api.js, *.d.ts, package.json) replaced by those of the npm 2.3.1
# tarball, i.e. the 2.0.1 tests exercise the 2.3.1 client.
# Upstream runs `make test` = `node --test --test-reporter=spec`; a 60 s
# per-test timeout is added so a hang shows up as one failure.
# summary.txt (one line per leaf test, from node_summary_reporter.mjs) is the
# per-test record; junit.xml from node 20 is malformed after a cancelled file.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
S=${SUITES_DIR:-$HERE/../../target/suites}   # downloads, venvs, results
mkdir -p "$S"
URL=${1:-amqp://guest:guest@127.0.0.1:5672}
LABEL=${2:-run}
shift 2 2>/dev/null || shift $#
[ "${1:-}" = "--" ] && shift
SRC=$S/src/amqplib-2.3.1
# A git directory of github.com/amqp-node/amqplib (commit f7503e5): the npm
# package has no tests and GitHub is not reachable from every machine.
MIRROR=${AMQPLIB_GIT_DIR:?set AMQPLIB_GIT_DIR to a git directory of amqp-node/amqplib}

if [ ! -d "$SRC/node_modules/claire" ]; then
  mkdir -p "$SRC" "$S/dl"
  [ -d "$MIRROR" ] || { echo "no amqp-node/amqplib git directory at $MIRROR" >&2; exit 2; }
  git --git-dir="$MIRROR" archive f7503e5 | tar -x -C "$SRC"
  [ -f "$S/dl/amqplib-2.3.1.tgz" ] || (cd "$S/dl" && npm pack amqplib@2.3.1)
  rm -rf "$S/dl/n" && mkdir -p "$S/dl/n" && tar xzf "$S/dl/amqplib-2.3.1.tgz" -C "$S/dl/n"
  rm -rf "$SRC/lib"
  cp -r "$S/dl/n/package/"{lib,channel_api.js,callback_api.js,index.d.ts,callback_api.d.ts,CHANGELOG.md,package.json} "$SRC/"
  (cd "$SRC" && npm install --no-save --ignore-scripts --no-audit --no-fund claire@0.4.1)
fi

OUT=$S/results/amqplib-$LABEL
mkdir -p "$OUT"
cd "$SRC"
export URL
timeout 1800 node --test --test-timeout=60000 \
  --test-reporter=spec --test-reporter-destination="$OUT/spec.log" \
  --test-reporter=junit --test-reporter-destination="$OUT/junit.xml" \
  --test-reporter="$HERE/node_summary_reporter.mjs" --test-reporter-destination="$OUT/summary.txt" \
  "$@" > "$OUT/stdout.log" 2>&1
echo "node --test exit: $?" >> "$OUT/stdout.log"
tail -12 "$OUT/spec.log"
tail -1 "$OUT/summary.txt"
echo "results: $OUT"
