"""A real MCP client for airlock's MCP server tests: the official Python SDK
(`mcp`, installed by the tests into site/ beside this file).

Reads one JSON scenario from argv[1]:
  {"transport": "http", "url": ..., "token": ...}      Streamable HTTP
  {"transport": "stdio", "command": [...], "env": {...}} stdio
  "calls": [{"tool": ..., "arguments": {...}}, ...]    ({"list": true}: list again)
  "repeat": {"tool": ..., "arguments": {...}, "times": N}  (optional: timing)
  "mode": "auto"  (optional: negotiate as the SDK's Client does, server/discover first)
  "sampling": {"reply": ..., "marker": path}  (optional: answer the server's
      sampling/createMessage with this text, first appending the request's
      params as one JSON line to the marker file, so a test sees it ran)
  "logging": true  (optional: the data of every log message the server
      sent, in order, as "logs")
and prints one JSON document: the negotiated protocol version, the tools as
listed, each call's result (as the SDK parsed it), and the repeated call's
per-call times in microseconds.
"""

import asyncio
import json
import sys
import time

import httpx2
from mcp import types
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client


def dump(model):
    return model.model_dump(mode="json", by_alias=True, exclude_none=True)


async def run(session, scenario):
    if scenario.get("mode") == "auto":
        # What the SDK's high-level Client does by default: probe
        # server/discover (the stateless 2026-07-28 revision), fall back to
        # the initialize handshake on a server that does not answer it.
        from mcp.client._probe import negotiate_auto

        await negotiate_auto(session)
        init = session.discover_result or session.initialize_result
        out = {"protocol_version": session.protocol_version, "discovered": session.discover_result is not None}
    else:
        init = await session.initialize()
        out = {"protocol_version": init.protocol_version if hasattr(init, "protocol_version") else None}
    out["server_info"] = dump(init.server_info) if getattr(init, "server_info", None) else None
    tools = await session.list_tools()
    out["tools"] = [dump(tool) for tool in tools.tools]
    results = []
    for call in scenario.get("calls", []):
        if call.get("list"):
            # Lists the tools again (the proxy's rug-pull test).
            listed = await session.list_tools()
            results.append({"tools": [dump(tool) for tool in listed.tools]})
            continue
        progress = []

        async def on_progress(done, total, message, progress=progress):
            progress.append({"progress": done, "message": message})

        callback = on_progress if call.get("progress") else None
        result = await session.call_tool(call["tool"], call.get("arguments", {}), progress_callback=callback)
        results.append(dump(result) | ({"progress": progress} if callback else {}))
    out["results"] = results
    repeat = scenario.get("repeat")
    if repeat:
        times = []
        for _ in range(repeat["times"]):
            started = time.perf_counter()
            result = await session.call_tool(repeat["tool"], repeat.get("arguments", {}))
            times.append(int((time.perf_counter() - started) * 1e6))
            if result.is_error:
                raise SystemExit("a repeated call failed: " + json.dumps(dump(result)))
        out["repeat_us"] = times
    return out


LOGS = []


def session_options(scenario):
    options = {}
    if scenario.get("logging"):

        async def on_log(params):
            LOGS.append(params.data)

        options["logging_callback"] = on_log
    sampling = scenario.get("sampling")
    if not sampling:
        return options

    async def on_sampling(context, params):
        with open(sampling["marker"], "a") as marker:
            marker.write(json.dumps(dump(params)) + "\n")
        return types.CreateMessageResult(
            role="assistant",
            content=types.TextContent(type="text", text=sampling["reply"]),
            model="airlock-test-model",
            stop_reason="endTurn",
        )

    options["sampling_callback"] = on_sampling
    return options


async def main():
    scenario = json.loads(sys.argv[1])
    options = session_options(scenario)
    if scenario["transport"] == "http":
        headers = {"Authorization": "Bearer " + scenario["token"]}
        async with httpx2.AsyncClient(headers=headers, timeout=60) as http:
            async with streamable_http_client(scenario["url"], http_client=http) as (read, write):
                async with ClientSession(read, write, **options) as session:
                    out = await run(session, scenario)
    else:
        params = StdioServerParameters(
            command=scenario["command"][0], args=scenario["command"][1:], env=scenario["env"]
        )
        async with stdio_client(params) as (read, write):
            async with ClientSession(read, write, **options) as session:
                out = await run(session, scenario)
    if scenario.get("logging"):
        out["logs"] = LOGS
    print(json.dumps(out))


asyncio.run(main())
