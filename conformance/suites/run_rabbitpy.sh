#!/usr/bin/env bash
# Run the rabbitpy 3.0.2 test suite (unit + integration) against a broker.
#
#   run_rabbitpy.sh [AMQP_URL] [LABEL] [-- extra pytest args]
#
#   AMQP_URL defaults to amqp://guest:guest@127.0.0.1:5672/%2f
#   LABEL    names the result dir $SUITES_DIR/results/rabbitpy-LABEL (default: "run")
#
# Source: the PyPI sdist of rabbitpy 3.0.2 (it ships tests/), installed
# editable into a venv under $SUITES_DIR with pamqp 4.x, python-dotenv, pytest.
# Upstream runs `python -m unittest discover tests`; pytest runs the same
# unittest.TestCase classes and gives a per-test junit report (120 s per-test
# timeout via pytest-timeout, so a hang on a broker shows as one failure).
# rabbitpy reads the broker from $RABBITMQ_URL, so any host/port works.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
S=${SUITES_DIR:-$HERE/../../target/suites}   # downloads, venvs, results
mkdir -p "$S"
URL=${1:-amqp://guest:guest@127.0.0.1:5672/%2f}
LABEL=${2:-run}
shift 2 2>/dev/null || shift $#
[ "${1:-}" = "--" ] && shift
SRC=$S/src/rabbitpy-3.0.2
VENV=$S/venv-rabbitpy

if [ ! -d "$SRC" ]; then
  mkdir -p "$S/dl" "$S/src"
  [ -f "$S/dl/rabbitpy-3.0.2.tar.gz" ] || python3 -m pip download -q --no-deps --no-binary :all: rabbitpy==3.0.2 -d "$S/dl"
  tar xzf "$S/dl/rabbitpy-3.0.2.tar.gz" -C "$S/src"
fi
if [ ! -x "$VENV/bin/pytest" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" -q install -e "$SRC" 'pamqp>=4,<5' python-dotenv pytest pytest-timeout
fi

[ $# -eq 0 ] && set -- tests   # extra args replace the default test selection
OUT=$S/results/rabbitpy-$LABEL
mkdir -p "$OUT"
rm -f "$SRC/.env"   # make sure only $RABBITMQ_URL is used
cd "$SRC"
export RABBITMQ_URL="$URL"
timeout 1800 "$VENV/bin/pytest" -v -p no:cacheprovider --timeout=120 \
  --junitxml="$OUT/junit.xml" -o junit_family=xunit2 "$@" > "$OUT/pytest.log" 2>&1
echo "pytest exit: $?" >> "$OUT/pytest.log"
tail -3 "$OUT/pytest.log"
python3 "$HERE/junit_summary.py" "$OUT/junit.xml" > "$OUT/summary.txt"
tail -1 "$OUT/summary.txt"
echo "results: $OUT"
