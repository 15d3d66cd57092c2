"""Serves the clients' metadata documents (CIMD) over HTTPS, with a certificate from the
scenarios' test CA (the gateway trusts it through `login.clients.fetch.ca_file`).

usage: https_docs.py PORT CERT KEY DIR — every GET of /NAME.json answers DIR/NAME.json as
application/json (max-age 60); each request is printed (the orchestrator counts fetches).
"""

import http.server
import ssl
import sys
from pathlib import Path

port, cert, key, root = int(sys.argv[1]), sys.argv[2], sys.argv[3], Path(sys.argv[4])


class Docs(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        name = self.path.split("?")[0].lstrip("/")
        doc = root / name
        if "/" in name or not name.endswith(".json") or not doc.is_file():
            self.send_error(404)
            return
        body = doc.read_bytes()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("cache-control", "max-age=60")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        print(f"GET {self.path} {args[1] if len(args) > 1 else ''}", flush=True)


server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Docs)
tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
tls.load_cert_chain(cert, key)
server.socket = tls.wrap_socket(server.socket, server_side=True)
print(f"https docs on https://127.0.0.1:{port}/", flush=True)
server.serve_forever()
