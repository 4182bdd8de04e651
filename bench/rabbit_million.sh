#!/bin/bash
# The RabbitMQ column of store/README.md's "One million messages on disk":
# 1M persistent 1 KiB messages on RabbitMQ 3.10, publish, restart, drain.
# RabbitMQ runs as in shared/reference.md, with its files in $RABBIT_DIR
# (default /tmp/rabbit-ref) and AMQP on 127.0.0.1:5673.
# Build first: cargo build --release -p warren-perf
d=${RABBIT_DIR:-/tmp/rabbit-ref}
export RABBITMQ_NODENAME=rabbit-ref@localhost RABBITMQ_NODE_PORT=5673 RABBITMQ_DIST_PORT=25673 \
  ERL_EPMD_PORT=24369 ERL_EPMD_ADDRESS=127.0.0.1 HOME=$d \
  RABBITMQ_MNESIA_BASE=$d/mnesia RABBITMQ_LOG_BASE=$d/log RABBITMQ_PID_FILE=$d/rabbit.pid \
  RABBITMQ_ENABLED_PLUGINS_FILE=$d/enabled_plugins RABBITMQ_CONFIG_FILE=$d/rabbitmq.conf
PERF=$(dirname "$0")/../target/release/warren-perf
URI=amqp://guest:guest@127.0.0.1:5673/%2f
rss() { grep VmRSS /proc/$(cat $d/rabbit.pid)/status | awk '{print int($2/1024)" MiB"}'; }
$PERF --uri $URI --json -C 1000000 -s 1024 --persistent -c 2000 -y 0 --queue-prefix million | tail -1 | python3 -c 'import json,sys; s=json.load(sys.stdin); print("rabbit publish", int(s["publish_rate"]), "msg/s")'
echo "rabbit RSS after publish: $(rss); mnesia $(du -sm $d/mnesia | cut -f1) MiB"
/usr/lib/rabbitmq/bin/rabbitmqctl stop > /dev/null 2>&1
sleep 1
t0=$(date +%s.%N)
/usr/lib/rabbitmq/bin/rabbitmq-server > $d/out2.log 2>&1 &
until python3 -c 'import socket; socket.create_connection(("127.0.0.1",5673),0.1).close()' 2>/dev/null; do sleep 0.05; done
t1=$(date +%s.%N)
echo "rabbit restart to first accepted connection: $(python3 -c "print(round(($t1-$t0)*1000))") ms"
/usr/lib/rabbitmq/bin/rabbitmqctl wait --timeout 120 $d/rabbit.pid > /dev/null 2>&1
sleep 0.5
echo "rabbit RSS after restart: $(rss)"
$PERF --uri $URI --json --keep-queues -x 0 -y 1 -z 15 -s 1024 --persistent -q 2000 --multiple-ack 100 --queue-prefix million | tail -1 | python3 -c 'import json,sys; s=json.load(sys.stdin); print("rabbit drained", s["consumed"], "in 15 s")'
sleep 2
echo "rabbit mnesia after drain: $(du -sm $d/mnesia | cut -f1) MiB"
