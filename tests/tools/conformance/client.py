"""Our MCPClient as the client under test in the official MCP conformance suite's client scenarios.

The suite starts a scenario's mock server and runs `python client.py URL` with the scenario in
MCP_CONFORMANCE_SCENARIO (and credentials, for some auth scenarios, in MCP_CONFORMANCE_CONTEXT).
The client does what an agent does: list the tools and call them. For OAuth-protected servers it
uses the SDK's OAuthClientProvider; the authorization step a person would do in a browser is a
plain GET of the authorization URL, whose redirect carries the code.
"""

from __future__ import annotations

import json
import os
import sys
from urllib.parse import parse_qs, urlparse

import httpx2
import mcp.types as types
from mcp.client.auth import AuthorizationCodeResult, OAuthClientProvider
from mcp.shared.auth import OAuthClientInformationFull, OAuthClientMetadata

from agentforge.tools.mcp_client import HttpServer, MCPClient

REDIRECT_URI = "http://localhost:3000/callback"
# What the client sends to tools the scenarios ask it to call (anything else gets {}).
ARGUMENTS = {
    "add_numbers": {"a": 5, "b": 3},
    "test_custom_headers": {"region": "us-west1", "priority": 42, "verbose": True, "debug": True, "empty_val": "",
                            "method_val": "GET", "float_val": 3.14, "non_ascii_val": "日本語",
                            "whitespace_val": "  padded  ", "leading_space_val": " lead", "trailing_space_val": "trail ",
                            "internal_space_val": "hello world", "control_char_val": "line1\nline2",
                            "crlf_val": "line1\r\nline2", "tab_val": "\tindented", "query": "SELECT * FROM users"},
    "test_custom_headers_null": {"region": "us-east1", "priority": 1, "verbose": None, "query": "SELECT 1"},
}


class MemoryTokens:
    """Token storage for one run (TokenStorage protocol)."""

    def __init__(self, client_info: OAuthClientInformationFull | None = None) -> None:
        self.tokens, self.client_info = None, client_info

    async def get_tokens(self):
        return self.tokens

    async def set_tokens(self, tokens) -> None:
        self.tokens = tokens

    async def get_client_info(self):
        return self.client_info

    async def set_client_info(self, client_info) -> None:
        self.client_info = client_info


class HeadlessBrowser:
    """Stands in for the user's browser: follows the authorization URL to its redirect."""

    def __init__(self) -> None:
        self.result: AuthorizationCodeResult | None = None

    async def open(self, authorization_url: str) -> None:
        async with httpx2.AsyncClient() as http:
            response = await http.get(authorization_url, follow_redirects=False)
        query = parse_qs(urlparse(response.headers.get("location", "")).query)
        if "code" not in query:
            raise RuntimeError(f"no authorization code in the redirect from {authorization_url}")
        self.result = AuthorizationCodeResult(code=query["code"][0], state=(query.get("state") or [None])[0],
                                              iss=(query.get("iss") or [None])[0])

    async def callback(self) -> AuthorizationCodeResult:
        return self.result


def oauth(url: str, context: dict) -> OAuthClientProvider:
    registered = None
    if context.get("client_id"):
        registered = OAuthClientInformationFull(
            client_id=context["client_id"], client_secret=context.get("client_secret"), redirect_uris=[REDIRECT_URI],
            token_endpoint_auth_method="client_secret_basic" if context.get("client_secret") else "none")
    browser = HeadlessBrowser()
    return OAuthClientProvider(
        server_url=url, storage=MemoryTokens(registered), redirect_handler=browser.open, callback_handler=browser.callback,
        client_metadata=OAuthClientMetadata(client_name="agentforge-conformance", redirect_uris=[REDIRECT_URI],
                                            grant_types=["authorization_code", "refresh_token"],
                                            response_types=["code"]),
        client_metadata_url="https://conformance-test.local/client-metadata.json")


def accept_with_defaults(params: types.ElicitRequestParams) -> types.ElicitResult:
    """Accept, filling in each field's default (what a user who just presses OK sends)."""
    properties = getattr(params, "requested_schema", {}).get("properties", {})
    return types.ElicitResult(action="accept", content={
        name: spec["default"] if "default" in spec else "conformance" for name, spec in properties.items()})


def sample(params: types.CreateMessageRequestParams) -> types.CreateMessageResult:
    return types.CreateMessageResult(role="assistant", model="agentforge-conformance",
                                     content=types.TextContent(type="text", text="Paris"))


def main() -> int:
    url, scenario = sys.argv[-1], os.environ.get("MCP_CONFORMANCE_SCENARIO", "")
    context = json.loads(os.environ.get("MCP_CONFORMANCE_CONTEXT") or "{}")
    auth = oauth(url, context) if scenario.startswith("auth/") else None
    with MCPClient({"server": HttpServer(url, auth=auth)}, prefix=False, elicitation=accept_with_defaults,
                   sampling=sample, roots=["file:///test/root"]) as mcp:
        tools = mcp.get_tools()
        for tool in tools:
            arguments = ARGUMENTS.get(tool.name, {})
            if tool.name == "json_schema_echo":  # send back the schema we were given: it must survive intact
                arguments = {"schema": next(t.parameters for t in tools if t.name != tool.name)}
            result = mcp.call_tool("server", tool.name, arguments)
            print(f"{tool.name}: {'error ' if result.is_error else ''}{result.content[:200]}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
