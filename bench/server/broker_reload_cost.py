#!/usr/bin/env python3
# The broker side of 10,000 devices on Mosquitto 2.0.11: a private broker (the stack's
# settings) with K accounts; opens K sessions (raw MQTT 3.1.1 CONNECTs from one thread),
# then measures the broker CPU of one password-file reload (SIGHUP) with K connected.
#   python3 bench/server/broker_reload_cost.py [K=10000]

import os, random, resource, signal, socket, struct, subprocess, sys, tempfile, time
K = int(sys.argv[1]) if len(sys.argv) > 1 else 10000
d = tempfile.mkdtemp(prefix="broker-reload-")
pw = d + "/passwd"
# one real hash reused for all (hash cost is not the point)
open(pw, "w").close()
subprocess.run(f"printf 'pw\\npw\\n' | mosquitto_passwd {pw} fleetd >/dev/null", shell=True, check=True)
h = open(pw).read().split(":", 1)[1].strip()
_s = socket.socket(); _s.bind(("127.0.0.1", 0)); port = _s.getsockname()[1]; _s.close()
open(d + "/acl", "w").write("pattern readwrite devices/%u/#\n")
open(d + "/mosquitto.conf", "w").write(f"""per_listener_settings false
max_packet_size 66560
listener {port} 127.0.0.1
use_username_as_clientid true
max_connections 100000
allow_anonymous false
password_file {pw}
acl_file {d}/acl
persistence true
persistence_location {d}/
max_inflight_messages 100
max_queued_messages 10000
sys_interval 1
log_dest file {d}/mosquitto.log
log_type error
log_type warning
log_type notice
""" + ("user root\n" if os.getuid() == 0 else ""))
_hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
resource.setrlimit(resource.RLIMIT_NOFILE, (_hard, _hard))  # one descriptor per session
p = subprocess.Popen(["mosquitto", "-c", d + "/mosquitto.conf"], stdout=open(d + "/stdout.log", "w"), stderr=subprocess.STDOUT)
time.sleep(0.5)
def rss():
    try:
        for l in open(f"/proc/{p.pid}/status"):
            if l.startswith("VmRSS"): return l.split()[1] + " kB"
    except Exception: return "gone"
def connect_pkt(user, password):
    def s(x): b = x.encode(); return struct.pack("!H", len(b)) + b
    var = s("MQTT") + bytes([4, 0xC2]) + struct.pack("!H", 60)
    payload = s(user) + s(user) + s(password)
    body = var + payload; n = len(body); rl = b""
    while True:
        byte = n % 128; n //= 128
        rl += bytes([byte | (0x80 if n else 0)])
        if not n: break
    return b"\x10" + rl + body
with open(pw, "w") as f: f.write("fleetd:" + h + "\n" + "".join(f"dev{i}:{h}\n" for i in range(K)))
os.kill(p.pid, signal.SIGHUP); time.sleep(1)
socks = []
tc = time.time()
for i in range(K):
    s = socket.create_connection(("127.0.0.1", port)); s.sendall(connect_pkt(f"dev{i}", "pw")); socks.append(s)
acc = sum(1 for s in socks if s.recv(4)[3:4] == b'\x00')
print(f'{K} connections: {acc} accepted in {time.time()-tc:.1f} s; broker rss {rss()}', flush=True)
def cpu():
    f = open(f"/proc/{p.pid}/stat").read().split(")")[1].split(); return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")
time.sleep(1); c0 = cpu(); t0 = time.time()
for r in range(5):
    os.kill(p.pid, signal.SIGHUP); time.sleep(2)
print(f"K={K} connected; broker CPU per reload {(cpu()-c0)/5:.3f} s; alive={p.poll() is None}; rss {rss()}")
p.terminate(); p.wait()
subprocess.run(["rm", "-rf", d])
