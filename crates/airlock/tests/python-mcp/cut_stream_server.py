"""A Streamable HTTP MCP server for the MCP proxy's resumption test,
written on the standard library so the stream can be cut on purpose.

Usage: cut_stream_server.py PORT

It answers `initialize` (session `s-cut`), `tools/list` (one tool, `cut`)
and `tools/call cut`. Its GET stream sends the event `e1` (a log message
`before-cut`) once a `cut` call has started, then closes. A reopened GET
stream is answered as the transport's resumption says: with
`Last-Event-ID: e1`, the events after it (`e2`, `after-cut`); without one,
every event again (`e1` and `e2`), so a client that lost its place would
see `before-cut` twice. The call's result names the `Last-Event-ID` the
reopened stream carried. Every GET's `Last-Event-ID` is printed.
"""

import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SESSION = "s-cut"
EVENTS = [("e1", "before-cut"), ("e2", "after-cut")]
call_started = threading.Event()
resumed = threading.Event()
state = {"gets": 0, "resumed_with": None}
lock = threading.Lock()


def log_event(event_id, text):
    message = {"jsonrpc": "2.0", "method": "notifications/message", "params": {"level": "info", "data": text}}
    return f"id: {event_id}\nevent: message\ndata: {json.dumps(message)}\n\n".encode()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply_json(self, status, body, headers=()):
        data = json.dumps(body).encode() if body is not None else b""
        self.send_response(status)
        if body is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        message = json.loads(self.rfile.read(length) or b"{}")
        method = message.get("method")
        if "id" not in message or method is None:
            return self.reply_json(202, None)
        answer = {"jsonrpc": "2.0", "id": message["id"]}
        if method == "initialize":
            answer["result"] = {
                "protocolVersion": message["params"].get("protocolVersion", "2025-11-25"),
                "capabilities": {"tools": {}, "logging": {}},
                "serverInfo": {"name": "cut-stream", "version": "1"},
            }
            return self.reply_json(200, answer, [("Mcp-Session-Id", SESSION)])
        if method == "tools/list":
            answer["result"] = {"tools": [{"name": "cut", "inputSchema": {"type": "object"}}]}
        elif method == "tools/call":
            call_started.set()
            resumed.wait(20)
            time.sleep(0.5)
            text = f"cut done; resumed with Last-Event-ID={state['resumed_with']}"
            answer["result"] = {"content": [{"type": "text", "text": text}]}
        else:
            answer["result"] = {}
        return self.reply_json(200, answer)

    def do_DELETE(self):
        self.reply_json(200, None)

    def do_GET(self):
        last = self.headers.get("Last-Event-ID")
        with lock:
            state["gets"] += 1
            number = state["gets"]
        print(f"GET {number} Last-Event-ID={last}", flush=True)
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        self.close_connection = True
        if number == 1:
            call_started.wait(30)
            self.wfile.write(log_event(*EVENTS[0]))
            self.wfile.flush()
            return  # the cut: the stream ends here
        after = [index for index, (event_id, _) in enumerate(EVENTS) if event_id == last]
        start = after[0] + 1 if after else 0
        for event in EVENTS[start:]:
            self.wfile.write(log_event(*event))
        self.wfile.flush()
        state["resumed_with"] = last
        resumed.set()
        try:
            for _ in range(300):
                time.sleep(0.1)
                self.wfile.write(b": keep-alive\n\n")
                self.wfile.flush()
        except OSError:
            pass


ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
