#!/usr/bin/env bash
# A/B of stream replay between Warren builds, on one machine whose speed
# drifts from hour to hour: one stream of COUNT 1 KiB messages is filled
# once (by the first build), then each build in turn starts on the same
# data directory and replays it from `first` (prefetch 1,000, acks every
# 100, as bench/streams.py), ROUNDS times. Prints each replay's rate and
# the broker's CPU per message (user+system from /proc, replay only).
#
# Usage: bench/replay_ab.sh ROUNDS COUNT BINARY...
#   e.g. bench/replay_ab.sh 6 2000000 /tmp/warren.old target/release/warren
# Build first: cargo build --release -p warren -p warren-perf
set -eu
rounds=$1; count=$2; shift 2
root=$(cd "$(dirname "$0")/.." && pwd)
perf=$root/target/release/warren-perf
port=${PORT:-5697}
uri=amqp://guest:guest@127.0.0.1:$port/%2f
stream=(--queue-arg x-queue-type=stream --persistent)
dir=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$dir"; }
trap cleanup EXIT

start() {
  "$1" --listen 127.0.0.1:$port --management-listen none --prometheus-listen none --data-dir "$dir" >/dev/null 2>&1 &
  pid=$!
  for _ in $(seq 100); do
    (echo >/dev/tcp/127.0.0.1/$port) 2>/dev/null && return 0
    sleep 0.1
  done
  echo "$1 did not start" >&2
  exit 1
}
stop() { kill "$pid"; wait "$pid" 2>/dev/null || true; pid=; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
field() { python3 -c "import json,sys; print(int(json.loads(sys.stdin.read().splitlines()[-1])['$1']))"; }

start "$1"
echo "fill $("$perf" --uri "$uri" --json -z 600 -s 1024 -c 1000 -y 0 -C "$count" --queue-prefix ab "${stream[@]}" | field confirm_rate) msg/s"
stop
for _ in $(seq "$rounds"); do
  for binary in "$@"; do
    start "$binary"
    before=$(cpu_ticks)
    rate=$("$perf" --uri "$uri" --json -z 600 -s 1024 -x 0 -C "$count" --keep-queues --queue-prefix ab \
      -q 1000 --multiple-ack 100 --consumer-arg x-stream-offset=first "${stream[@]}" | field consume_rate)
    after=$(cpu_ticks)
    ticks=$(getconf CLK_TCK)
    echo "$binary replay $rate msg/s, broker $(python3 -c "print(round(($after - $before) * 1e6 / $ticks / $count, 2))") us/msg"
    stop
  done
done
