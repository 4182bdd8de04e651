#!/bin/sh
# A three-node RabbitMQ 3.10 cluster on this machine for bench/cluster.py
# (as ../shared/reference.md describes): nodes rq1..rq3@localhost, AMQP on
# 127.0.0.1:5681-5683, state under $RQ_DIR (default /work/ref/rq).
#   bench/rabbit_cluster.sh start        start the three nodes and join them
#   bench/rabbit_cluster.sh leader Q     which node leads quorum queue Q
#   bench/rabbit_cluster.sh kill N       SIGKILL node N
#   bench/rabbit_cluster.sh restart N    start node N again and wait for it
#   bench/rabbit_cluster.sh stop         stop all three
set -e
DIR=${RQ_DIR:-/work/ref/rq}
BIN=/usr/lib/rabbitmq/bin
env_of() {
    export RABBITMQ_NODENAME=rq$1@localhost RABBITMQ_NODE_PORT=568$1 RABBITMQ_DIST_PORT=2568$1 \
        ERL_EPMD_PORT=24370 ERL_EPMD_ADDRESS=127.0.0.1 HOME=$DIR \
        RABBITMQ_MNESIA_BASE=$DIR/n$1/mnesia RABBITMQ_LOG_BASE=$DIR/n$1/log RABBITMQ_PID_FILE=$DIR/n$1/rabbit.pid \
        RABBITMQ_ENABLED_PLUGINS_FILE=$DIR/n$1/enabled_plugins RABBITMQ_CONFIG_FILE=$DIR/n$1/rabbitmq.conf
}
start_node() {
    mkdir -p "$DIR/n$1"
    [ -f "$DIR/n$1/enabled_plugins" ] || echo "[]." > "$DIR/n$1/enabled_plugins"
    [ -f "$DIR/n$1/rabbitmq.conf" ] || printf "listeners.tcp.default = 568%s\nloopback_users = none\n" "$1" > "$DIR/n$1/rabbitmq.conf"
    ( env_of "$1"; nohup $BIN/rabbitmq-server > "$DIR/n$1/out.log" 2>&1 & )
    ( env_of "$1"; $BIN/rabbitmqctl -n rq$1@localhost wait "$DIR/n$1/rabbit.pid" --timeout 60 > /dev/null )
}
case "$1" in
start)
    mkdir -p "$DIR"
    [ -f "$DIR/.erlang.cookie" ] || { printf WARRENBENCHCOOKIE > "$DIR/.erlang.cookie"; chmod 400 "$DIR/.erlang.cookie"; }
    for n in 1 2 3; do start_node $n; done
    for n in 2 3; do
        ( env_of $n; $BIN/rabbitmqctl -n rq$n@localhost stop_app > /dev/null
          $BIN/rabbitmqctl -n rq$n@localhost join_cluster rq1@localhost > /dev/null
          $BIN/rabbitmqctl -n rq$n@localhost start_app > /dev/null )
    done ;;
kill)
    kill -9 "$(cat "$DIR/n$2/rabbit.pid")" ;;
leader)
    ( env_of 1; $BIN/rabbitmqctl -n rq1@localhost list_queues name leader --formatter json ) |
        python3 -c "import json,sys; print(next(q['leader'] for q in json.load(sys.stdin) if q['name'] == sys.argv[1]))" "$2" ;;
restart)
    start_node "$2" ;;
stop)
    for n in 1 2 3; do ( env_of $n; $BIN/rabbitmqctl -n rq$n@localhost stop > /dev/null || true ); done ;;
*)
    echo "usage: $0 start|leader Q|kill N|restart N|stop" >&2; exit 2 ;;
esac
