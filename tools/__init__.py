"""AgentForge's tool model, MCP client and MCP server. Not built yet: see the tools-and-MCP issue."""
