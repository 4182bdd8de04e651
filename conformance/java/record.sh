#!/usr/bin/env bash
# Re-records the expected outputs from a RabbitMQ 3.10 listening on PORT
# (default 5673; see shared/reference.md for running one beside Warren).
# Needs a JDK and Debian's librabbitmq-client-java (the Java client 5.0).
set -euo pipefail
cd "$(dirname "$0")"
port="${1:-5673}"
cp=/usr/share/java/amqp-client.jar:/usr/share/java/slf4j-api.jar:/usr/share/java/slf4j-nop.jar
classes=$(mktemp -d)
trap 'rm -rf "$classes"' EXIT
javac -d "$classes" -cp "$cp" ./*.java
mkdir -p expected
for name in Errors Messages Consumers QueueTypes Recovery; do
    java -cp "$classes:$cp" "$name" "$port" > "expected/$name.txt"
    echo "recorded expected/$name.txt"
done
