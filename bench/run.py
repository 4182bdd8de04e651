#!/usr/bin/env python3
"""Runs the perf scenarios against Warren and, where it answers, RabbitMQ,
side by side: runs are interleaved (Warren, RabbitMQ, Warren, ...) and the
median of --runs is kept. Writes bench/out/results.json, bench/out/results.md
and bench/out/ratios.png.

Usage: python3 bench/run.py [--runs 3] [--duration 5] [--rabbit-uri URI]
                            [--only 1,3,5]
Build first: cargo build --release -p warren -p warren-perf
RabbitMQ: see shared/reference.md (listens on 127.0.0.1:5673 there).
"""
import argparse, json, os, platform, shutil, socket, statistics, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RELEASE = os.path.join(ROOT, "target", "release")
PERF = os.path.join(RELEASE, "warren-perf")

# (id, name, warren-perf args, metric, unit, higher is better)
SCENARIOS = [
    ("1", "transient 16 B, auto-ack", ["-s", "16", "-a"], "consume_rate", "msg/s", True),
    ("2", "16 B, prefetch 1000, ack every 100", ["-s", "16", "-q", "1000", "--multiple-ack", "100"], "consume_rate", "msg/s", True),
    ("3", "persistent 1 KiB, confirms 1000", ["-s", "1024", "--persistent", "-c", "1000"], "confirm_rate", "msg/s", True),
    ("4", "fanout to 4 queues, 256 B", ["-s", "256", "--exchange-type", "fanout", "--queues", "4", "-y", "4", "-a"], "consume_rate", "msg/s", True),
    ("5", "latency at 1000 msg/s (p99)", ["-s", "16", "-r", "1000", "-a"], "p99", "µs", False),
    ("6", "4 producers, 4 consumers, 4 queues, 64 B", ["-s", "64", "-x", "4", "-y", "4", "--queues", "4", "-a"], "consume_rate", "msg/s", True),
    ("7", "publish only, 1 KiB, x-max-length 100000", ["-s", "1024", "-y", "0", "--queue-arg", "x-max-length=100000"], "publish_rate", "msg/s", True),
    ("8", "topic, 10000 bindings", ["-s", "16", "--exchange-type", "topic", "--routing-key", "perf.x.y", "--binding-key", "perf.#", "--topic-bindings", "10000", "-a"], "publish_rate", "msg/s", True),
]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None


def start_warren(data_dir):
    port = free_port()
    t0 = time.monotonic()
    proc = subprocess.Popen([os.path.join(RELEASE, "warren"), "--listen", f"127.0.0.1:{port}", "--management-listen", "127.0.0.1:0", "--prometheus-listen", "127.0.0.1:0", "--data-dir", data_dir],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.05).close()
            break
        except OSError:
            if time.monotonic() - t0 > 10:
                raise SystemExit("warren did not start")
            time.sleep(0.001)
    return proc, port, (time.monotonic() - t0) * 1000


def run_perf(uri, args, duration):
    cmd = [PERF, "--uri", uri, "--json", "-z", str(duration)] + args
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration * 4 + 120)
    if out.returncode != 0:
        # The error and its causes, not the backtrace anyhow adds under
        # RUST_BACKTRACE.
        error = out.stderr.split("Stack backtrace:")[0].strip()
        print(f"  warren-perf failed ({out.returncode}): {error[-300:]}", file=sys.stderr)
        return None
    return json.loads(out.stdout.strip().splitlines()[-1])


def write_medians(results, filename, extra):
    """Prints each measure's medians and Warren/RabbitMQ ratio, and writes
    them with the raw values (and `extra`) to bench/out/`filename`."""
    out = {}
    for name, values in results.items():
        med = {b: statistics.median([v for v in vs if v]) if any(vs) else None for b, vs in values.items()}
        out[name] = {"values": values, "median": med,
                     "ratio": (med["warren"] / med["rabbitmq"]) if med["warren"] and med["rabbitmq"] else None}
        print(f"{name}: Warren {med['warren']}, RabbitMQ {med['rabbitmq']}, ratio {out[name]['ratio']}")
    os.makedirs(os.path.join(ROOT, "bench", "out"), exist_ok=True)
    with open(os.path.join(ROOT, "bench", "out", filename), "w") as f:
        json.dump(dict(extra, results=out), f, indent=1)


def metric(summary, name):
    if summary is None:
        return None
    if name == "p99":
        return summary["consumer_latency"]["p99_us"]
    return summary[name]


def rabbit_pid():
    out = subprocess.run(["pgrep", "-f", "beam.smp.*rabbit"], capture_output=True, text=True)
    pids = out.stdout.split()
    return int(pids[0]) if pids else None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--duration", type=float, default=5)
    ap.add_argument("--rabbit-uri", default="amqp://guest:guest@127.0.0.1:5673/%2f")
    ap.add_argument("--only", default="")
    ap.add_argument("--idle-connections", type=int, default=1000)
    opts = ap.parse_args()
    out_dir = os.path.join(ROOT, "bench", "out")
    os.makedirs(out_dir, exist_ok=True)
    data_dir = tempfile.mkdtemp(prefix="warren-bench-")
    warren, port, startup_ms = start_warren(data_dir)
    idle_rss = rss_kib(warren.pid)
    warren_uri = f"amqp://guest:guest@127.0.0.1:{port}/%2f"
    rabbit_uri = opts.rabbit_uri
    try:
        host, rport = rabbit_uri.rsplit("@", 1)[1].split("/")[0].split(":")
        socket.create_connection((host, int(rport)), timeout=1).close()
    except OSError:
        print("RabbitMQ not reachable: measuring Warren only")
        rabbit_uri = None
    only = set(opts.only.split(",")) if opts.only else None
    rows = []
    for sid, name, args, metric_name, unit, higher in SCENARIOS:
        if only and sid not in only:
            continue
        values = {"warren": [], "rabbitmq": []}
        for run in range(opts.runs):
            for broker, uri in (("warren", warren_uri), ("rabbitmq", rabbit_uri)):
                if uri is None:
                    continue
                value = metric(run_perf(uri, args, opts.duration), metric_name)
                if value is not None:
                    values[broker].append(value)
                print(f"scenario {sid} run {run + 1} {broker}: {value} {unit}", flush=True)
        med = {k: (statistics.median(v) if v else None) for k, v in values.items()}
        rows.append({"id": sid, "scenario": f"{sid}. {name}", "unit": unit, "warren": med["warren"],
                     "rabbitmq": med["rabbitmq"], "higher_is_better": higher})
        if sid == "3":
            rows.append({"id": "3m", "scenario": "memory after scenario 3", "unit": "KiB",
                         "warren": rss_kib(warren.pid), "rabbitmq": None, "higher_is_better": False})
    if not only or "9" in only:
        before = rss_kib(warren.pid)
        rpid = rabbit_pid() if rabbit_uri else None
        rbefore = rss_kib(rpid) if rpid else None
        for broker, uri, pid, base in (("warren", warren_uri, warren.pid, before), ("rabbitmq", rabbit_uri, rpid, rbefore)):
            if uri is None or pid is None:
                continue
            proc = subprocess.Popen([PERF, "--uri", uri, "--json", "-z", str(opts.duration + 5), "-a",
                                     "--idle-connections", str(opts.idle_connections), "--queue-prefix", f"idle{broker}"],
                                    stdout=subprocess.PIPE, text=True)
            time.sleep(opts.duration)  # connections are open by now
            after = rss_kib(pid)
            out, _ = proc.communicate(timeout=300)
            rate = json.loads(out.strip().splitlines()[-1])["consume_rate"]
            per_conn = (after - base) / opts.idle_connections if after and base else None
            rows.append({"id": f"9-{broker}", "scenario": f"9. {opts.idle_connections} idle connections ({broker})",
                         "unit": "KiB per connection / msg/s", "warren" if broker == "warren" else "rabbitmq": per_conn,
                         "rate": rate})
    warren.terminate()
    warren.wait(timeout=10)
    shutil.rmtree(data_dir, ignore_errors=True)
    meta = {"date": time.strftime("%Y-%m-%d"), "cores": os.cpu_count(), "machine": platform.machine(),
            "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30),
            "warren_startup_ms": round(startup_ms, 1), "warren_idle_rss_kib": idle_rss}
    with open(os.path.join(out_dir, "results.json"), "w") as f:
        json.dump([r for r in rows if "warren" in r and "rabbitmq" in r and r.get("rabbitmq") is not None], f, indent=1)
    with open(os.path.join(out_dir, "all.json"), "w") as f:
        json.dump({"meta": meta, "rows": rows}, f, indent=1)
    lines = [f"Measured {meta['date']} on {meta['cores']} cores, {meta['memory_gib']} GiB ({meta['machine']}); "
             f"median of {opts.runs} interleaved runs of {opts.duration} s each.", "",
             "| scenario | Warren | RabbitMQ 3.10 | ratio |", "|---|---|---|---|"]
    for r in rows:
        w, rb = r.get("warren"), r.get("rabbitmq")
        ratio = ""
        if w and rb:
            ratio = f"{(w / rb if r.get('higher_is_better', True) else rb / w):.1f}x"
        fmt = lambda v: "" if v is None else (f"{v:,.0f}" if isinstance(v, (int, float)) and v >= 100 else f"{v:.2f}")
        extra = f" (rate beside them: {r['rate']:,.0f} msg/s)" if "rate" in r else ""
        lines.append(f"| {r['scenario']} | {fmt(w)} | {fmt(rb)} | {ratio} |" + extra)
    lines += ["", f"Warren start-up to first accepted connection: {meta['warren_startup_ms']} ms; "
              f"idle resident memory: {idle_rss} KiB."]
    with open(os.path.join(out_dir, "results.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    chart = os.path.join(RELEASE, "bench-chart")
    if os.path.exists(chart):
        subprocess.run([chart, os.path.join(out_dir, "results.json"), os.path.join(out_dir, "ratios.png")])


if __name__ == "__main__":
    main()
