#!/usr/bin/env python3
"""Serves one recorded JVM answer on many loopback ports, as many JVMs would, for
scripts/bench/jmx.sh. Usage: jmx_serve.py FILE FIRST_PORT COUNT"""
import http.server
import sys
import threading

body = open(sys.argv[1], "rb").read()
first, count = int(sys.argv[2]), int(sys.argv[3])


class Answer(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def reply(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = reply
    do_POST = reply

    def log_message(self, *args):
        pass


for port in range(first, first + count):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Answer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
print("serving", flush=True)
threading.Event().wait()
