// A real MCP client for airlock's MCP server tests: the official TypeScript
// SDK (@modelcontextprotocol/sdk, installed by the tests with `npm ci` into
// node_modules/ beside this file), over Streamable HTTP.
//
// argv[2]: {"url": ..., "token": ..., "calls": [{"tool", "arguments"}]}.
// It first does what an MCP client does before it has a token: POST without
// one, read the 401's WWW-Authenticate resource_metadata, fetch that
// protected-resource metadata; then it connects with the token, lists the
// tools and makes the calls. Prints one JSON document.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const scenario = JSON.parse(process.argv[2]);
const out = {};

const unauthenticated = await fetch(scenario.url, {
  method: "POST",
  headers: { "content-type": "application/json", accept: "application/json, text/event-stream" },
  body: JSON.stringify({ jsonrpc: "2.0", id: 0, method: "ping" }),
});
out.unauthenticated_status = unauthenticated.status;
const challenge = unauthenticated.headers.get("www-authenticate") ?? "";
const metadataUrl = /resource_metadata="([^"]+)"/.exec(challenge)?.[1];
out.metadata_url = metadataUrl ?? null;
if (metadataUrl) {
  out.metadata = await (await fetch(metadataUrl)).json();
}

const transport = new StreamableHTTPClientTransport(new URL(scenario.url), {
  requestInit: { headers: { Authorization: `Bearer ${scenario.token}` } },
});
const client = new Client({ name: "airlock-e2e", version: "1.0.0" });
await client.connect(transport);
out.protocol_version = transport.protocolVersion ?? null;
out.server = client.getServerVersion();
out.session_id = transport.sessionId ?? null;
out.tools = (await client.listTools()).tools;
out.results = [];
for (const call of scenario.calls ?? []) {
  out.results.push(await client.callTool({ name: call.tool, arguments: call.arguments ?? {} }));
}
await client.close();
console.log(JSON.stringify(out));
