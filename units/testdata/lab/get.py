#!/usr/bin/env python3
"""get.py ADDR [PATH]: one HTTP GET to ADDR (host:port or /unix/socket), print the body or ERROR."""
import http.client, socket, sys

class UnixConn(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost", timeout=5)
        self.path_ = path
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(5)
        self.sock.connect(self.path_)

addr = sys.argv[1]
try:
    if addr.startswith("/"):
        c = UnixConn(addr)
    else:
        host, port = addr.rsplit(":", 1)
        c = http.client.HTTPConnection(host, int(port), timeout=5)
    c.request("GET", sys.argv[2] if len(sys.argv) > 2 else "/")
    r = c.getresponse()
    print(r.status, r.read().decode().strip())
except Exception as e:
    print("ERROR", repr(e))
    sys.exit(1)
