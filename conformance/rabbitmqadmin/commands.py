"""rabbitmqadmin, the management plugin's command-line tool (the Python
script RabbitMQ 3.10 serves at /cli/rabbitmqadmin), against a broker's
management API: declares, lists, publishes, gets and deletes what
operators do, and prints each command with what the tool printed.
expected/commands.txt holds what this printed against RabbitMQ 3.10
(record.sh re-records it); conformance/tests/rabbitmqadmin.rs compares.

Usage: python3 commands.py RABBITMQADMIN HTTP_PORT
"""
import subprocess
import sys

ADMIN, PORT = sys.argv[1], sys.argv[2]
V = "ra-v"

COMMANDS = [
    # Users, vhosts and permissions.
    f"declare vhost name={V}",
    "declare user name=ra-user password=secret tags=monitoring",
    "declare user name=ra-hashed password_hash=jL2J3Jz8jzRfd5mRUmOvjJ+J5F3JKp+a+X4XQ2vZ3C5t5Yg8 "
    "hashing_algorithm=rabbit_password_hashing_sha256 tags=",
    f"declare permission vhost={V} user=ra-user configure=^ra- write=.* read=.*",
    "-f tsv list users name tags",
    f"-f tsv list permissions vhost user configure write read",
    "-f tsv list vhosts name",
    # Exchanges, queues and bindings, as strings ("durable": "false").
    f"-V {V} declare exchange name=ra-x type=topic",
    f"-V {V} declare exchange name=ra-alt type=fanout durable=false auto_delete=true internal=true",
    f"-V {V} declare exchange name=ra-bad type=no-such-type",
    f"-V {V} declare queue name=ra-q durable=true arguments='{{\"x-max-length\":5,\"x-message-ttl\":60000}}'",
    f"-V {V} declare queue name=ra-q durable=false",
    f"-V {V} declare queue name=ra-transient durable=false auto_delete=true",
    f"-V {V} declare queue name=ra-quorum queue_type=quorum",
    f"-V {V} declare queue name=ra-stream queue_type=stream",
    f"-V {V} declare binding source=ra-x destination=ra-q routing_key=a.#",
    f"-V {V} declare binding source=ra-x destination=ra-alt destination_type=exchange routing_key=b.*",
    f"-V {V} declare binding source=ra-x destination=ra-missing routing_key=c",
    f"-V {V} -f tsv -S name list queues name durable auto_delete arguments",
    f"-V {V} -f tsv -S name list exchanges name type durable auto_delete internal",
    f"-V {V} -f tsv -S routing_key list bindings source destination destination_type routing_key properties_key",
    # Messages.
    f"-V {V} publish exchange=ra-x routing_key=a.b payload=hello "
    "properties='{\"content_type\":\"text/plain\",\"headers\":{\"h\":1}}'",
    f"-V {V} publish routing_key=ra-q payload=aGVsbG8gYWdhaW4= payload_encoding=base64",
    f"-V {V} publish exchange=ra-x routing_key=nowhere payload=lost",
    f"-V {V} publish exchange=ra-none routing_key=a payload=x",
    f"-V {V} -f tsv get queue=ra-q count=5 ackmode=ack_requeue_true",
    f"-V {V} -f tsv get queue=ra-q count=1 ackmode=ack_requeue_false",
    f"-V {V} -f tsv get queue=ra-q count=5 ackmode=ack_requeue_true encoding=base64",
    f"-V {V} -f tsv get queue=ra-missing",
    f"-V {V} purge queue name=ra-q",
    f"-V {V} -f tsv get queue=ra-q",
    # Policies and limits.
    f"-V {V} declare policy name=ra-p pattern=^ra-q$ apply-to=queues definition='{{\"max-length\":3}}' priority=2",
    f"-V {V} declare policy name=ra-bad pattern=^x definition='{{\"no-such-key\":1}}'",
    f"-V {V} -f tsv list policies name pattern apply-to definition priority",
    f"-V {V} declare operator_policy name=ra-op pattern=^ra- apply-to=queues definition='{{\"max-length\":100}}'",
    f"-V {V} -f tsv list operator_policies name pattern apply-to definition priority",
    f"declare vhost_limit vhost={V} name=max-connections value=10",
    f"declare vhost_limit vhost={V} name=max-queues value=-1",
    "-f tsv list vhost_limits vhost value",
    f"delete vhost_limit vhost={V} name=max-connections",
    # Deletes, and deletes of what is not there.
    f"-V {V} delete binding source=ra-x destination_type=queue destination=ra-q properties_key=a.%23",
    f"-V {V} delete binding source=ra-x destination_type=queue destination=ra-q properties_key=a.%23",
    f"-V {V} -f tsv -S routing_key list bindings source destination routing_key",
    f"-V {V} delete policy name=ra-p",
    f"-V {V} delete operator_policy name=ra-op",
    f"-V {V} delete queue name=ra-q",
    f"-V {V} delete queue name=ra-q",
    f"-V {V} delete exchange name=ra-x",
    f"-V {V} delete exchange name=amq.direct",
    "close connection name=no-such-connection",
    f"delete permission vhost={V} user=ra-user",
    "delete user name=ra-user",
    "delete user name=ra-hashed",
    "delete user name=ra-user",
    f"delete vhost name={V}",
    f"delete vhost name={V}",
    "-f tsv list vhosts name",
]


def main():
    for command in COMMANDS:
        run = subprocess.run(f"python3 {ADMIN} -P {PORT} {command}", shell=True,
                             capture_output=True, text=True, timeout=60)
        print(f"$ {command}")
        for line in (run.stdout + run.stderr).splitlines():
            if line.strip():
                print(f"  {line.rstrip()}")
        print(f"  (exit {run.returncode})")


if __name__ == "__main__":
    main()
