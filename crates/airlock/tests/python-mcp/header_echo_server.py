"""A Streamable HTTP MCP server for airlock's proxy tests, written with the
official Python SDK (`mcp`, installed by the tests into site/ beside this
file): its one tool, `show_headers`, answers with the HTTP headers of the
request that carried the call, as an upstream that echoes what it received
would (the credential the gateway injected among them).

argv: the SDK's site directory, the port to listen on (127.0.0.1), then
optionally `--json` (answer requests with JSON, not event streams) and
`--tls CERT KEY` (serve https with that certificate).
"""

import sys

sys.path.insert(0, sys.argv[1])

import uvicorn  # noqa: E402
from mcp.server.mcpserver import Context, MCPServer  # noqa: E402

server = MCPServer("header-echo")


@server.tool()
def show_headers(ctx: Context) -> str:
    """Returns the HTTP headers of the request that carried this call."""
    request = ctx.request_context.request
    return "\n".join(f"{name}: {value}" for name, value in request.headers.items())


options = sys.argv[3:]
tls = {}
if "--tls" in options:
    at = options.index("--tls")
    tls = {"ssl_certfile": options[at + 1], "ssl_keyfile": options[at + 2]}
app = server.streamable_http_app(json_response="--json" in options)
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_level="info", **tls)
