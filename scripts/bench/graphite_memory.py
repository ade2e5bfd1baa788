# kiln-graphite-exporter's memory against few series with very long names (run by
# scripts/bench/graphite_memory.sh): resident memory idle, after ingest, at the scrape
# peak, and one minute after the series expired.
#
#   graphite_memory.py EXPORTER SERIES NAME_BYTES [EXTRA FLAGS...]
import socket, subprocess, time, sys, os, urllib.request
exe = sys.argv[1]
nseries = int(sys.argv[2]); namelen = int(sys.argv[3]); extra = sys.argv[4:]
web, gp = 19618, 19619
p = subprocess.Popen([exe, f"--web.listen-address=127.0.0.1:{web}", f"--graphite.listen-address=127.0.0.1:{gp}", "--graphite.sample-expiry=15s"] + extra)
def status(key):
    for line in open(f"/proc/{p.pid}/status"):
        if line.startswith(key): return int(line.split()[1]) // 1024
def scrape():
    t=time.time(); body = urllib.request.urlopen(f"http://127.0.0.1:{web}/metrics", timeout=120).read(); return len(body), time.time()-t
def metric(name):
    for line in urllib.request.urlopen(f"http://127.0.0.1:{web}/metrics?collect[]=graphite", timeout=60).read().decode().splitlines():
        if line.startswith(name + " "): return float(line.split()[1])
time.sleep(1)
print("idle RSS MiB", status("VmRSS"))
now = int(time.time())
s = socket.create_connection(("127.0.0.1", gp))
for n in range(nseries):
    s.sendall(f"{n:0>{namelen}} 1 {now}\n".encode())
s.close()
time.sleep(3)
print("series", metric("graphite_series"), "bytes MiB", (metric("graphite_series_bytes") or 0)/2**20, "rejected", metric("graphite_series_limit_rejected_samples_total"))
print("after ingest RSS MiB", status("VmRSS"))
size, took = scrape()
print("scrape bytes MiB %.1f in %.2fs" % (size/2**20, took))
print("peak (VmHWM) MiB", status("VmHWM"), "RSS after scrape", status("VmRSS"))
# wait for expiry (15 s) and the 60 s sweep, then a minute more
t0=time.time()
while time.time()-t0 < 150:
    time.sleep(5)
    if metric("graphite_series") == 0: break
expired_at = time.time()-t0
print("series expired after %.0fs" % expired_at)
scrape()
time.sleep(60)
scrape()
print("RSS one minute after expiry MiB", status("VmRSS"))
p.terminate(); p.wait()
