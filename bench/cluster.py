#!/usr/bin/env python3
"""Replicated quorum queues, a three-node Warren cluster beside a three-node
RabbitMQ 3.10 cluster on this machine, in one run:

  1. throughput: 1 KiB persistent messages with confirms (100 outstanding)
     into a quorum queue, one producer and one consumer on the first node;
  2. failover: a publisher on another node than the queue's leader
     publishes with confirms, one at a time; the leader's node is killed
     with SIGKILL; the time from the kill to the confirm of the first
     publish sent after it;
  3. disk under churn: bytes of the queue's replicated log on the first
     node after N messages went in and out (the queue is empty again);
  4. memory of a deep queue: how much the resident memory of the node that
     grew most grew while N 1 KiB messages were published (with confirms)
     into a quorum queue nobody consumes.

Writes bench/out/cluster.json and prints a table.

Usage: python3 bench/cluster.py [--runs 3] [--duration 10] [--churn 200000]
                                [--depth 400000]
Build first: cargo build --release -p warren -p warren-perf
RabbitMQ: bench/rabbit_cluster.sh start (AMQP on 127.0.0.1:5681-5683).
"""
import argparse, json, os, shutil, signal, socket, subprocess, sys, tempfile, threading, time
import urllib.request, base64

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from run import RELEASE, ROOT, run_perf, write_medians  # noqa: E402

import pika  # noqa: E402

QUORUM = ["--queue-arg", "x-queue-type=quorum", "--persistent"]
RABBIT = os.path.join(ROOT, "bench", "rabbit_cluster.sh")


def free_port(ip):
    s = socket.socket()
    s.bind((ip, 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(ip, port, limit=30):
    t0 = time.monotonic()
    while True:
        try:
            socket.create_connection((ip, port), timeout=0.1).close()
            return
        except OSError:
            if time.monotonic() - t0 > limit:
                raise SystemExit(f"nothing listens on {ip}:{port}")
            time.sleep(0.01)


class WarrenCluster:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="bench-cluster-")
        self.ips = [f"127.0.0.{i}" for i in (1, 2, 3)]
        self.cluster_ports = [free_port(ip) for ip in self.ips]
        self.amqp_ports = [free_port(ip) for ip in self.ips]
        self.http_ports = [free_port(ip) for ip in self.ips]
        self.peers = ",".join(f"n{i + 1}={ip}:{p}" for i, (ip, p) in enumerate(zip(self.ips, self.cluster_ports)))
        self.procs = [None, None, None]
        for i in range(3):
            self.start(i)
        self.wait_for_leader()

    def start(self, i):
        ip = self.ips[i]
        self.procs[i] = subprocess.Popen(
            [os.path.join(RELEASE, "warren"), "--listen", f"{ip}:{self.amqp_ports[i]}",
             "--management-listen", f"{ip}:{self.http_ports[i]}", "--prometheus-listen", "none",
             "--data-dir", os.path.join(self.dir, f"n{i + 1}"), "--node-name", f"n{i + 1}",
             "--cluster-listen", f"{ip}:{self.cluster_ports[i]}", "--cluster-peers", self.peers],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(ip, self.amqp_ports[i])

    def wait_for_leader(self):
        auth = base64.b64encode(b"guest:guest").decode()
        t0 = time.monotonic()
        while time.monotonic() - t0 < 30:
            try:
                req = urllib.request.Request(f"http://{self.ips[0]}:{self.http_ports[0]}/api/nodes",
                                             headers={"Authorization": f"Basic {auth}"})
                nodes = json.load(urllib.request.urlopen(req, timeout=1))
                if sum(n["running"] for n in nodes) == 3 and any(n.get("metadata_leader") for n in nodes):
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise SystemExit("the Warren cluster elected no leader")

    def uri(self, i):
        return f"amqp://guest:guest@{self.ips[i]}:{self.amqp_ports[i]}/%2f"

    def params(self, i):
        return pika.ConnectionParameters(self.ips[i], self.amqp_ports[i])

    def leader(self, queue):
        auth = base64.b64encode(b"guest:guest").decode()
        for _ in range(100):
            req = urllib.request.Request(f"http://{self.ips[1]}:{self.http_ports[1]}/api/queues/%2f/{queue}",
                                         headers={"Authorization": f"Basic {auth}"})
            try:
                leader = json.load(urllib.request.urlopen(req, timeout=1)).get("leader")
            except OSError:
                leader = None  # not applied on this node yet
            if leader:
                return int(leader[1:]) - 1
            time.sleep(0.1)
        raise SystemExit(f"no leader for {queue}")

    def kill(self, i):
        self.procs[i].send_signal(signal.SIGKILL)
        self.procs[i].wait()

    def restart(self, i):
        self.start(i)

    def log_bytes(self):
        root = os.path.join(self.dir, "n1", "cluster", "queues")
        return dir_bytes(root)

    def pids(self):
        return [p.pid for p in self.procs]

    def stop(self):
        for p in self.procs:
            if p and p.poll() is None:
                p.terminate()
                p.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


class RabbitCluster:
    ports = [5681, 5682, 5683]

    def uri(self, i):
        return f"amqp://guest:guest@127.0.0.1:{self.ports[i]}/%2f"

    def params(self, i):
        return pika.ConnectionParameters("127.0.0.1", self.ports[i])

    def leader(self, queue):
        out = subprocess.run([RABBIT, "leader", queue], capture_output=True, text=True, check=True).stdout
        return int(out.strip().split("@")[0][2:]) - 1

    def kill(self, i):
        subprocess.run([RABBIT, "kill", str(i + 1)], check=True)

    def restart(self, i):
        subprocess.run([RABBIT, "restart", str(i + 1)], check=True)

    def log_bytes(self):
        return dir_bytes("/work/ref/rq/n1/mnesia/rq1@localhost/quorum")

    def pids(self):
        return [int(open(f"/work/ref/rq/n{i}/rabbit.pid").read().strip()) for i in (1, 2, 3)]

    def stop(self):
        pass


def dir_bytes(root):
    total = 0
    for base, _, files in os.walk(root):
        for f in files:
            try:
                total += os.path.getsize(os.path.join(base, f))
            except OSError:
                pass
    return total


def declare(params, name):
    c = pika.BlockingConnection(params)
    ch = c.channel()
    ch.queue_delete(name)
    ch.queue_declare(name, durable=True, arguments={"x-queue-type": "quorum"})
    c.close()


def throughput(cluster, duration):
    s = run_perf(cluster.uri(0), ["-s", "1024", "-c", "100", "-q", "300", "--multiple-ack", "10",
                                  "--queue-prefix", "bench-qq"] + QUORUM, duration)
    return s and (s["confirm_rate"], s["consume_rate"])


def failover(cluster):
    """Seconds from the leader's SIGKILL to the next confirmed publish."""
    declare(cluster.params(0), "bench-failover")
    leader = cluster.leader("bench-failover")
    others = [i for i in range(3) if i != leader]
    confirms = []
    stop = threading.Event()

    def publish():
        while not stop.is_set():
            for i in others:
                try:
                    c = pika.BlockingConnection(cluster.params(i))
                    ch = c.channel()
                    ch.confirm_delivery()
                    while not stop.is_set():
                        sent = time.monotonic()
                        ch.basic_publish("", "bench-failover", b"x" * 1024, pika.BasicProperties(delivery_mode=2))
                        confirms.append((sent, time.monotonic()))
                except Exception:
                    time.sleep(0.05)

    t = threading.Thread(target=publish, daemon=True)
    t.start()
    time.sleep(3)
    killed = time.monotonic()
    cluster.kill(leader)
    t0 = time.monotonic()
    # The first publish sent after the kill: one already on its way may
    # have been committed before the leader died.
    while time.monotonic() - t0 < 60 and not any(sent > killed for sent, _ in confirms):
        time.sleep(0.01)
    after = [confirmed for sent, confirmed in confirms if sent > killed]
    stop.set()
    t.join(timeout=10)
    cluster.restart(leader)
    return (after[0] - killed) if after else None


def churn(cluster, count):
    run_perf(cluster.uri(0), ["-s", "1024", "-c", "100", "-C", str(count), "--queue-prefix", "bench-churn",
                              "--keep-queues"] + QUORUM, 300)
    time.sleep(5)
    return cluster.log_bytes()


def rss_bytes(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def deep_memory(cluster, count):
    before = [rss_bytes(p) for p in cluster.pids()]
    s = run_perf(cluster.uri(0), ["-s", "1024", "-c", "1000", "-y", "0", "-C", str(count), "--queue-prefix", "bench-deep",
                                  "--keep-queues"] + QUORUM, 600)
    if s is None:
        return None
    time.sleep(5)
    grown = max(rss_bytes(p) - b for p, b in zip(cluster.pids(), before))
    c = pika.BlockingConnection(cluster.params(0))
    c.channel().queue_delete("bench-deep-0")
    c.close()
    return grown


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--duration", type=float, default=10)
    ap.add_argument("--churn", type=int, default=200_000)
    ap.add_argument("--depth", type=int, default=400_000)
    o = ap.parse_args()
    names = ("publish_confirmed_msg_s", "consume_msg_s", "failover_s", "log_bytes_after_churn", "memory_growth_deep_queue")
    results = {n: {"warren": [], "rabbitmq": []} for n in names}
    for run in range(o.runs):
        for broker in ("warren", "rabbitmq"):
            cluster = WarrenCluster() if broker == "warren" else RabbitCluster()
            try:
                t = throughput(cluster, o.duration)
                f = failover(cluster)
                d = churn(cluster, o.churn) if run == 0 else None
                m = deep_memory(cluster, o.depth) if run == 0 else None
            finally:
                cluster.stop()
            results["publish_confirmed_msg_s"][broker].append(t and t[0])
            results["consume_msg_s"][broker].append(t and t[1])
            results["failover_s"][broker].append(f)
            results["log_bytes_after_churn"][broker].append(d)
            results["memory_growth_deep_queue"][broker].append(m)
            print(f"run {run + 1} {broker}: throughput {t}, failover {f} s, log after churn {d} B, "
                  f"memory growth with {o.depth} waiting {m} B", flush=True)
    write_medians(results, "cluster.json", {"churn_messages": o.churn, "deep_queue_messages": o.depth})


if __name__ == "__main__":
    main()
