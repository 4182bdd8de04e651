#!/usr/bin/env bash
# Re-records expected/commands.txt from a RabbitMQ 3.10 whose management
# API listens on HTTP_PORT (default 15675; shared/reference.md says how to
# run one beside Warren with the management plugin). RABBITMQADMIN is the
# script (default: where Debian's rabbitmq-server package puts it).
set -euo pipefail
cd "$(dirname "$0")"
http_port="${1:-15675}"
admin="${RABBITMQADMIN:-/usr/lib/rabbitmq/lib/rabbitmq_server-3.10.8/plugins/rabbitmq_management-3.10.8/priv/www/cli/rabbitmqadmin}"
mkdir -p expected
python3 commands.py "$admin" "$http_port" > expected/commands.txt
echo "recorded expected/commands.txt"
