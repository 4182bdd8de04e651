"""Usage: python3 bench/million.py DATA_DIR [COUNT] [DRAIN_SECONDS]

Build first: cargo build --release -p warren -p warren-perf.
1M persistent 1 KiB messages: publish rate, memory, disk, restart time and memory, then drain and disk after."""
import os, socket, subprocess, sys, time, json, signal
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__))); REL = ROOT + "/target/release"
def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p
def rss(pid):
    for l in open(f"/proc/{pid}/status"):
        if l.startswith("VmRSS:"): return int(l.split()[1])
def du(d):
    return int(subprocess.run(["du", "-sk", d], capture_output=True, text=True).stdout.split()[0])
def start(data, port):
    t0 = time.monotonic()
    p = subprocess.Popen([REL + "/warren", "--listen", f"127.0.0.1:{port}", "--management-listen", "127.0.0.1:0", "--prometheus-listen", "127.0.0.1:0", "--data-dir", data], stdout=subprocess.DEVNULL, stderr=open("/tmp/million-warren.log", "a"))
    while True:
        try: socket.create_connection(("127.0.0.1", port), timeout=0.05).close(); break
        except OSError: time.sleep(0.001)
    return p, (time.monotonic() - t0) * 1000
def perf(port, *args):
    out = subprocess.run([REL + "/warren-perf", "--uri", f"amqp://guest:guest@127.0.0.1:{port}/%2f", "--json", *args], capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])
data = sys.argv[1]; n = int(sys.argv[2]) if len(sys.argv) > 2 else 1000000
subprocess.run(["rm", "-rf", data])
port = free_port()
p, ms = start(data, port)
s = perf(port, "-C", str(n), "-s", "1024", "--persistent", "-c", "2000", "-y", "0")
print(f"published {n}: {s['publish_rate']:.0f} msg/s confirmed {s.get('confirm_rate',0):.0f}; RSS after publish {rss(p.pid)/1024:.1f} MiB; data dir {du(data)/1024:.0f} MiB")
p.send_signal(signal.SIGTERM); p.wait()
p, ms = start(data, port)
time.sleep(0.5)
print(f"restart: first accepted connection after {ms:.0f} ms; RSS 0.5 s later {rss(p.pid)/1024:.1f} MiB")
s = perf(port, "--keep-queues", "-z", sys.argv[3] if len(sys.argv) > 3 else "25", "-x", "0", "-y", "1", "-s", "1024", "--persistent", "-q", "2000", "--multiple-ack", "100")
print(f"drained {s['consumed']} at {s['consume_rate']:.0f} msg/s; RSS {rss(p.pid)/1024:.1f} MiB; data dir {du(data)/1024:.1f} MiB")
time.sleep(2)
print(f"2 s later: data dir {du(data)/1024:.1f} MiB (messages/ {du(data + '/messages')/1024:.1f} MiB, sled {du(data + '/sled')/1024:.1f} MiB)")
p.send_signal(signal.SIGTERM); p.wait()
