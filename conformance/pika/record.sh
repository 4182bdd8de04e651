#!/usr/bin/env bash
# Re-records the expected outputs from a RabbitMQ 3.10 listening on PORT
# (default 5673), with its management API on HTTP_PORT (default 15673; see
# shared/reference.md for running one beside Warren).
set -euo pipefail
cd "$(dirname "$0")"
port="${1:-5673}"
http_port="${2:-15673}"
for script in [!_]*.py; do
    name="${script%.py}"
    python3 "$script" "$port" "$http_port" > "expected/$name.txt"
    echo "recorded expected/$name.txt"
done
