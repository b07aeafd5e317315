"""The fixture server the official MCP conformance suite (`@modelcontextprotocol/conformance`)
tests: the tool, resource and prompt names its scenarios call, built only from MCPToolServer's
public API.

    python tests/tools/conformance/server.py PORT
"""

from __future__ import annotations

import asyncio
import base64
import json
import sys

import mcp.types as types

from agentforge.tools.mcp_server import (
    Elicit,
    ListRoots,
    MCPToolServer,
    Prompt,
    Resource,
    ResourceTemplate,
    Sample,
    ask,
    client_supports,
    log,
    report_progress,
)
from agentforge.tools.tool import Tool

PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg=="
WAV = "UklGRiYAAABXQVZFZm10IBAAAAABAAEAQB8AAAB9AAACABAAZGF0YQIAAAA="


def form(message: str, **properties: dict) -> Elicit:
    return Elicit(message, {"type": "object", "properties": properties, "required": list(properties)})


def text_of(reply: types.CreateMessageResult) -> str:
    return getattr(reply.content, "text", "")


# --- content -------------------------------------------------------------------------------


def test_simple_text() -> str:
    """Returns simple text."""
    return "This is a simple text response for testing."


def test_image_content() -> types.ImageContent:
    """Returns an image."""
    return types.ImageContent(type="image", data=PNG, mime_type="image/png")


def test_audio_content() -> types.AudioContent:
    """Returns audio."""
    return types.AudioContent(type="audio", data=WAV, mime_type="audio/wav")


def test_embedded_resource() -> types.EmbeddedResource:
    """Returns an embedded resource."""
    return types.EmbeddedResource(type="resource", resource=types.TextResourceContents(
        uri="test://embedded-resource", mime_type="text/plain", text="This is an embedded resource content."))


def test_multiple_content_types() -> list:
    """Returns text, an image and an embedded resource."""
    return [types.TextContent(type="text", text="Multiple content types test:"),
            types.ImageContent(type="image", data=PNG, mime_type="image/png"),
            types.EmbeddedResource(type="resource", resource=types.TextResourceContents(
                uri="test://mixed-content-resource", mime_type="application/json",
                text=json.dumps({"test": "data", "value": 123})))]


def test_error_handling() -> str:
    """Always fails."""
    raise RuntimeError("This tool intentionally returns an error for testing")


async def test_tool_with_logging() -> str:
    """Logs three messages."""
    for message in ("Tool execution started", "Tool processing data", "Tool execution completed"):
        log("info", message)
        await asyncio.sleep(0.05)
    return "Tool with logging executed successfully"


async def test_tool_with_progress() -> str:
    """Reports progress in three steps."""
    for step in (0, 50, 100):
        report_progress(step, 100, f"Completed step {step} of 100")
        await asyncio.sleep(0.05)
    return "Progress reported"


# --- asking the client, 2025-11-25 (a request mid-call) and 2026-07-28 (InputRequiredResult) --


async def test_sampling(prompt: str) -> str:
    """Asks the client's LLM."""
    return f"LLM response: {text_of(await Sample(prompt, max_tokens=100))}"


async def test_elicitation(message: str) -> str:
    """Asks the user."""
    answer = await form(message, response={"type": "string"})
    return f"User response: action={answer.action}, content={json.dumps(answer.content)}"


async def test_elicitation_sep1034_defaults() -> str:
    """Asks with a default for every primitive type."""
    answer = await Elicit("Please provide user information", {"type": "object", "properties": {
        "name": {"type": "string", "default": "John Doe"},
        "age": {"type": "integer", "default": 30},
        "score": {"type": "number", "default": 95.5},
        "status": {"type": "string", "enum": ["active", "inactive", "pending"], "default": "active"},
        "verified": {"type": "boolean", "default": True}}})
    return f"Elicitation result: action={answer.action}, content={json.dumps(answer.content)}"


async def test_elicitation_sep1330_enums() -> str:
    """Asks with every enum schema form."""
    answer = await Elicit("Please select values using different enum schema types", {"type": "object", "properties": {
        "untitledSingle": {"type": "string", "enum": ["option1", "option2", "option3"]},
        "titledSingle": {"type": "string", "oneOf": [{"const": "value1", "title": "First Option"},
                                                     {"const": "value2", "title": "Second Option"}]},
        "legacyEnum": {"type": "string", "enum": ["opt1", "opt2"], "enumNames": ["Option One", "Option Two"]},
        "untitledMulti": {"type": "array", "items": {"type": "string", "enum": ["option1", "option2", "option3"]}},
        "titledMulti": {"type": "array", "items": {"anyOf": [{"const": "value1", "title": "First Choice"},
                                                             {"const": "value2", "title": "Second Choice"}]}}}})
    return f"Elicitation completed: action={answer.action}, content={json.dumps(answer.content)}"


async def test_input_required_result_elicitation() -> str:
    """Asks the user's name."""
    answers = await ask(user_name=form("What is your name?", name={"type": "string"}))
    return f"Hello, {answers['user_name'].content['name']}!"


async def test_input_required_result_sampling() -> str:
    """Asks the client's LLM a question."""
    answers = await ask(capital_question=Sample("What is the capital of France?", max_tokens=100))
    return f"Sampling response: {text_of(answers['capital_question'])}"


async def test_input_required_result_list_roots() -> str:
    """Asks for the client's roots."""
    answers = await ask(client_roots=ListRoots())
    return "Client roots: " + ", ".join(str(root.uri) for root in answers["client_roots"].roots)


async def test_input_required_result_request_state() -> str:
    """Asks for a confirmation; the answer comes back with the sealed request state."""
    await ask(confirm=form("Please confirm", ok={"type": "boolean"}))
    return "state-ok: the request state came back intact"


async def test_input_required_result_tampered_state() -> str:
    """Like the request-state tool: a tampered state is refused before this runs again."""
    await ask(confirm=form("Please confirm", ok={"type": "boolean"}))
    return "state-ok: the request state came back intact"


async def test_input_required_result_multiple_inputs() -> str:
    """Asks three questions at once."""
    await ask(user_name=form("What is your name?", name={"type": "string"}),
              greeting=Sample("Generate a greeting", max_tokens=50), client_roots=ListRoots())
    return "Every input answered."


async def test_input_required_result_multi_round() -> str:
    """Asks two questions, one after the other."""
    first = await ask(step1=form("Step 1: What is your name?", name={"type": "string"}))
    second = await ask(step2=form("Step 2: What is your favorite color?", color={"type": "string"}))
    return f"{first['step1'].content['name']} likes {second['step2'].content['color']}."


async def test_input_required_result_capabilities() -> str:
    """Asks only what the client declared it can answer."""
    questions = {"sampling": Sample("Generate a greeting", max_tokens=50),
                 "elicitation": form("What is your name?", name={"type": "string"}), "roots": ListRoots()}
    await ask(**{key: question for key, question in questions.items() if client_supports(key)})
    return "Declared-capability inputs answered."


async def test_missing_capability() -> str:
    """Needs the client's sampling capability."""
    return text_of(await Sample("Say hello", max_tokens=20))


async def test_streaming_elicitation() -> str:
    """Asks the user while the call runs (on 2026-07-28 that ends the call with an InputRequiredResult)."""
    answer = await form("What is your name?", name={"type": "string"})
    return f"Hello, {answer.content['name']}!"


async def test_logging_tool() -> str:
    """Logs at info level (delivered only to clients that asked for that level)."""
    log("info", "a log message")
    return "logged"


def extra_tool() -> str:
    """Comes and goes with test_trigger_tool_change."""
    return "here"


async def test_trigger_tool_change() -> str:
    """Adds or removes a tool, so listeners hear that the tool list changed."""
    if "extra_tool" in server.tools:
        await server.remove_tool("extra_tool")
        return "removed extra_tool"
    await server.add_tool(extra_tool)
    return "added extra_tool"


async def test_trigger_prompt_change() -> str:
    """Adds or removes a prompt, so listeners hear that the prompt list changed."""
    if "extra_prompt" in server.prompts:
        await server.remove_prompt("extra_prompt")
        return "removed extra_prompt"
    await server.add_prompt(Prompt("extra_prompt", lambda: "Here for a while.", "Comes and goes"))
    return "added extra_prompt"


async def test_input_required_result_prompt() -> list:
    answers = await ask(user_context=form("What context should the prompt use?", context={"type": "string"}))
    return [f"Prompt context: {answers['user_context'].content['context']}"]


# --- schemas and headers -------------------------------------------------------------------

SCHEMA_2020_12 = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "$defs": {"address": {"$anchor": "addressDef", "type": "object",
                          "properties": {"street": {"type": "string"}, "city": {"type": "string"}}}},
    "properties": {"name": {"type": "string"}, "address": {"$ref": "#/$defs/address"},
                   "contactMethod": {"type": "string", "enum": ["phone", "email"]},
                   "phone": {"type": "string"}, "email": {"type": "string"}},
    "allOf": [{"anyOf": [{"required": ["phone"]}, {"required": ["email"]}]}],
    "if": {"properties": {"contactMethod": {"const": "phone"}}, "required": ["contactMethod"]},
    "then": {"required": ["phone"]},
    "else": {"required": ["email"]},
    "additionalProperties": False,
}
HEADER_SCHEMA = {"type": "object", "properties": {"text": {"type": "string", "x-mcp-header": "Text"}}}

json_schema_2020_12_tool = Tool(lambda **arguments: arguments, name="json_schema_2020_12_tool",
                                description="A tool whose input schema uses JSON Schema 2020-12.",
                                parameters=SCHEMA_2020_12)
test_header_echo = Tool(lambda text="": text, name="test_header_echo", parameters=HEADER_SCHEMA,
                        description="Echoes `text`, which the client also sends as the Mcp-Param-Text header.")


# --- resources and prompts -----------------------------------------------------------------

RESOURCES = [
    Resource("test://static-text", "static-text", lambda: "This is the content of the static text resource.",
             "A static text resource."),
    Resource("test://static-binary", "static-binary", lambda: base64.b64decode(PNG), "A static binary resource.",
             mime_type="image/png"),
    Resource("test://watched-resource", "watched-resource", lambda: "Watched resource content",
             "A resource to subscribe to."),
    ResourceTemplate("test://template/{id}/data", "template",
                     lambda id: json.dumps({"id": id, "templateTest": True, "data": f"Data for ID: {id}"}),
                     "A resource template.", mime_type="application/json",
                     complete=lambda name, prefix: [v for v in ("1", "2", "42") if v.startswith(prefix)]),
]

PROMPTS = [
    Prompt("test_simple_prompt", lambda: "This is a simple prompt for testing.", "A prompt without arguments"),
    Prompt("test_prompt_with_arguments", lambda arg1, arg2: f"Prompt with arguments: arg1='{arg1}', arg2='{arg2}'",
           "A prompt with required arguments", [("arg1", "First argument", True), ("arg2", "Second argument", True)],
           complete=lambda name, prefix: [v for v in ("alpha", "beta", "gamma") if v.startswith(prefix)]),
    Prompt("test_prompt_with_embedded_resource", lambda resourceUri: [
        types.EmbeddedResource(type="resource", resource=types.TextResourceContents(
            uri=resourceUri, mime_type="text/plain", text="Embedded resource content for testing.")),
        "Please process the embedded resource above."],
        "A prompt with an embedded resource", [("resourceUri", "The resource to embed", True)]),
    Prompt("test_prompt_with_image", lambda: [types.ImageContent(type="image", data=PNG, mime_type="image/png"),
                                              "Please analyze the image above."], "A prompt with an image"),
    Prompt("test_input_required_result_prompt", test_input_required_result_prompt, "A prompt that asks the user"),
]

TOOLS = [test_simple_text, test_image_content, test_audio_content, test_embedded_resource, test_multiple_content_types,
         test_error_handling, test_tool_with_logging, test_tool_with_progress, test_sampling, test_elicitation,
         test_elicitation_sep1034_defaults, test_elicitation_sep1330_enums, test_input_required_result_elicitation,
         test_input_required_result_sampling, test_input_required_result_list_roots,
         test_input_required_result_request_state, test_input_required_result_tampered_state,
         test_input_required_result_multiple_inputs, test_input_required_result_multi_round,
         test_input_required_result_capabilities, test_missing_capability, test_streaming_elicitation,
         test_logging_tool, test_trigger_tool_change, test_trigger_prompt_change, json_schema_2020_12_tool,
         test_header_echo]

server = MCPToolServer("agentforge-conformance", TOOLS, resources=RESOURCES, prompts=PROMPTS)

if __name__ == "__main__":
    server.run("http", port=int(sys.argv[1]))
