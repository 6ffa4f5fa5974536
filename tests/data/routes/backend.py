#!/usr/bin/env python3
"""A stand-in chain backend for cc-routes tests (stdlib only).

    backend.py PORT TAG

GET /health/ready answers 200. Every other request answers 200 with one JSON
object naming the backend tag and what the backend saw (Host, Authorization,
X-Request-Id), so a test can tell which server a request reached."""
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    tag = "?"

    def _answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        if self.path == "/health/ready":
            body = b"ready\n"
        else:
            body = json.dumps({
                "tag": self.tag,
                "host": self.headers.get("Host"),
                "authorization": self.headers.get("Authorization"),
                "request_id": self.headers.get("X-Request-Id"),
            }).encode() + b"\n"
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = _answer
    do_POST = _answer

    def log_message(self, fmt, *args):
        pass


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # health checks and drained connections hang up early


def main():
    port, Handler.tag = int(sys.argv[1]), sys.argv[2]
    server = Server(("127.0.0.1", port), Handler)
    server.serve_forever()


if __name__ == "__main__":
    main()
