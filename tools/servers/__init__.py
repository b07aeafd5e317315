"""MCP servers shipped with AgentForge; each runs on its own: `python -m agentforge.tools.servers.<name>`
or `agentforge mcp serve <name> ...`."""
