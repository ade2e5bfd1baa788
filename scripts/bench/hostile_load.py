# Hostile load against an exporter on loopback (run by scripts/bench/hostile.sh):
# slow-loris connections (a partial head, a byte every 5 s, re-opened when closed),
# connections that pipeline 200 requests and never read, password guessers (half for a real
# user, half for an unknown one, a new connection each), and one legitimate scraper with
# verified credentials scraping every 100 ms. Prints how many legitimate scrapes succeeded
# within 2 s.
#
#   hostile_load.py PORT SLOW NEVER_READING GUESSERS SECONDS
import asyncio, base64, sys, time, random
HOST, PORT = "127.0.0.1", int(sys.argv[1])
SLOW, NEVER_READ, GUESSERS, DURATION = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
GOOD = "Authorization: Basic " + base64.b64encode(b"alice:secret").decode()
stop = False
stats = {"slow_reconnects": 0, "guess_answers": {}, "legit": []}

async def slow_loris():
    while not stop:
        try:
            r, w = await asyncio.open_connection(HOST, PORT)
            stats["slow_reconnects"] += 1
            w.write(b"GET /metrics HTTP/1.1\r\nHost: x\r\n"); await w.drain()
            while not stop:
                await asyncio.sleep(5)
                w.write(b"X"); await w.drain()
                if r.at_eof(): break
        except Exception:
            await asyncio.sleep(0.05)

async def never_reader():
    while not stop:
        try:
            r, w = await asyncio.open_connection(HOST, PORT, limit=1)
            req = ("GET /metrics HTTP/1.1\r\nHost: x\r\n%s\r\n\r\n" % GOOD).encode() * 200
            w.write(req)
            while not stop:
                await asyncio.sleep(1)
                try:
                    w.write(b""); await asyncio.wait_for(w.drain(), 0.1)
                except asyncio.TimeoutError:
                    pass
                if w.transport.is_closing(): break
                # Never read: but notice the server closing.
                if r._transport is None or r._eof: break
        except Exception:
            await asyncio.sleep(0.05)

async def guesser(g):
    n = 0
    while not stop:
        n += 1
        cred = base64.b64encode(f"{'alice' if g % 2 else 'mallory'}:guess{g}-{n}".encode()).decode()
        try:
            r, w = await asyncio.open_connection(HOST, PORT)
            w.write(f"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Basic {cred}\r\n\r\n".encode())
            await w.drain()
            line = await asyncio.wait_for(r.readline(), 30)
            code = line.split()[1].decode() if len(line.split()) > 1 else "none"
            stats["guess_answers"][code] = stats["guess_answers"].get(code, 0) + 1
            w.close()
        except Exception as e:
            stats["guess_answers"]["error"] = stats["guess_answers"].get("error", 0) + 1
            await asyncio.sleep(0.05)

async def legit():
    while not stop:
        t = time.monotonic()
        ok = False
        try:
            async def one():
                r, w = await asyncio.open_connection(HOST, PORT)
                w.write(f"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{GOOD}\r\n\r\n".encode())
                await w.drain()
                data = await r.read()
                w.close()
                return data.startswith(b"HTTP/1.1 200")
            ok = await asyncio.wait_for(one(), 2.0)
        except Exception:
            ok = False
        stats["legit"].append((ok, time.monotonic() - t))
        await asyncio.sleep(max(0, 0.1 - (time.monotonic() - t)))

async def main():
    global stop
    tasks = [asyncio.create_task(slow_loris()) for _ in range(SLOW)]
    tasks += [asyncio.create_task(never_reader()) for _ in range(NEVER_READ)]
    tasks += [asyncio.create_task(guesser(g)) for g in range(GUESSERS)]
    await asyncio.sleep(5)
    lt = asyncio.create_task(legit())
    await asyncio.sleep(DURATION)
    stop = True
    await asyncio.sleep(0.5)
    for t in tasks + [lt]: t.cancel()
    ok = [d for s, d in stats["legit"] if s]
    n = len(stats["legit"])
    ok.sort()
    print(f"legit scrapes: {len(ok)}/{n} succeeded within 2 s ({100*len(ok)/max(n,1):.1f} %); "
          f"median {1000*ok[len(ok)//2] if ok else 0:.1f} ms, max {1000*ok[-1] if ok else 0:.1f} ms")
    print("slow-loris (re)connections:", stats["slow_reconnects"], " guess answers:", stats["guess_answers"])

asyncio.run(main())
