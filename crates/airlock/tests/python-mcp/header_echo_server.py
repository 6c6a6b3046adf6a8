"""A Streamable HTTP MCP server for airlock's proxy tests, written with the
official Python SDK (`mcp`, installed by the tests into site/ beside this
file): its one tool, `show_headers`, answers with the HTTP headers of the
request that carried the call, as an upstream that echoes what it received
would (the credential the gateway injected among them).

argv: the SDK's site directory, the port to listen on (127.0.0.1).
"""

import sys

sys.path.insert(0, sys.argv[1])

from mcp.server.mcpserver import Context, MCPServer  # noqa: E402

server = MCPServer("header-echo")


@server.tool()
def show_headers(ctx: Context) -> str:
    """Returns the HTTP headers of the request that carried this call."""
    request = ctx.request_context.request
    return "\n".join(f"{name}: {value}" for name, value in request.headers.items())


server.run("streamable-http", host="127.0.0.1", port=int(sys.argv[2]))
