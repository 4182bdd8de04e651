#!/usr/bin/env bash
# Run the aiormq 7.2.4 test suite against a broker.
#
#   run_aiormq.sh [AMQP_URL] [LABEL] [AMQPS_PORT] [-- extra pytest args]
#
#   AMQP_URL   default amqp://guest:guest@127.0.0.1:5672/
#   LABEL      result dir $SUITES_DIR/results/aiormq-LABEL (default "run")
#   AMQPS_PORT TLS listener on the same host for the amqps/amqps-client
#              parametrisations (default 5671; README.md says how to start
#              Warren's for them)
#
# Source: the PyPI sdist aiormq-7.2.4.tar.gz (it ships tests/; the GitHub
# snapshot stops at 6.9.x), installed editable into a venv under $SUITES_DIR
# with the dev group's pytest, aiomisc-pytest, markdown-pytest + pytest-timeout.
# The sdist's conftest.py lacks the docker-based `rabbitmq_container` and
# `amqp_direct_url` fixtures; aiormq_fixtures.py beside this script supplies them
# from AMQP_URL / AMQPS_PORT (loaded with -p aiormq_fixtures).
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
S=${SUITES_DIR:-$HERE/../../target/suites}   # downloads, venvs, results
mkdir -p "$S"
URL=${1:-amqp://guest:guest@127.0.0.1:5672/}
LABEL=${2:-run}
TLS=${3:-5671}
shift 3 2>/dev/null || shift $#
[ "${1:-}" = "--" ] && shift
SRC=$S/src/aiormq-7.2.4
VENV=$S/venv-aiormq

if [ ! -d "$SRC" ]; then
  mkdir -p "$S/dl" "$S/src"
  if [ ! -f "$S/dl/aiormq-7.2.4.tar.gz" ]; then
    # pip must build metadata for an sdist; uv_build needs its binary on PATH
    [ -x "$S/tools-venv/bin/uv-build" ] || { python3 -m venv "$S/tools-venv"; "$S/tools-venv/bin/pip" -q install 'uv_build>=0.12.19,<0.14'; }
    (cd "$S/dl" && PATH="$S/tools-venv/bin:$PATH" "$S/tools-venv/bin/pip" download --no-deps \
       --no-binary :all: --no-build-isolation aiormq==7.2.4 -d .)
  fi
  tar xzf "$S/dl/aiormq-7.2.4.tar.gz" -C "$S/src"
fi
if [ ! -x "$VENV/bin/pytest" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" -q install -e "$SRC" 'pytest>=8.4,<10' 'aiomisc-pytest>=2,<3' \
    'markdown-pytest>=0.6.6,<0.7' pytest-timeout
fi

[ $# -eq 0 ] && set -- tests   # extra args replace the default test selection
OUT=$S/results/aiormq-$LABEL
mkdir -p "$OUT"
cd "$SRC"
export AMQP_URL="$URL" AMQPS_PORT="$TLS" PYTHONPATH=$HERE
timeout 3000 "$VENV/bin/pytest" -v -p aiormq_fixtures -p no:cacheprovider --timeout=90 \
  --junitxml="$OUT/junit.xml" -o junit_family=xunit2 "$@" > "$OUT/pytest.log" 2>&1
echo "pytest exit: $?" >> "$OUT/pytest.log"
tail -3 "$OUT/pytest.log"
python3 "$HERE/junit_summary.py" "$OUT/junit.xml" > "$OUT/summary.txt"
tail -1 "$OUT/summary.txt"
echo "results: $OUT"
