#!/bin/bash
# Usage: bench/churn.sh DATA_DIR [ROUNDS] [SECONDS]   (build first: cargo build --release -p warren -p warren-perf)
# rounds of publish-with-confirms + consume/ack on one data dir; du after each
D=$1; ROUNDS=${2:-6}; DUR=${3:-10}
rm -rf $D; mkdir -p $D
PORT=5699
$(dirname "$0")/../target/release/warren --listen 127.0.0.1:$PORT --management-listen 127.0.0.1:0 --prometheus-listen 127.0.0.1:0 --data-dir $D 2>/tmp/churn-warren.log &
W=$!
sleep 0.5
total=0
echo "round 0: $(du -sk $D | cut -f1) KiB"
for r in $(seq 1 $ROUNDS); do
  out=$($(dirname "$0")/../target/release/warren-perf --uri amqp://guest:guest@127.0.0.1:$PORT/%2f --json -z $DUR -s 1024 --persistent -c 1000 --queue-prefix churn)
  n=$(echo "$out" | tail -1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["consumed"])')
  total=$((total+n))
  sleep 1
  echo "round $r: total $total; dir $(du -sk $D | cut -f1) KiB; messages $(du -sk $D/messages | cut -f1) KiB; sled $(du -sk $D/sled | cut -f1) KiB; rss $(grep VmRSS /proc/$W/status | awk '{print $2}') KiB"
done
sleep 8
echo "idle 8 s: dir $(du -sk $D | cut -f1) KiB; messages $(du -sk $D/messages | cut -f1) KiB; sled $(du -sk $D/sled | cut -f1) KiB"
kill $W
