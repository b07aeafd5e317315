"""AgentForge's state-machine runtime (LangGraph-style). Not built yet: see the graph-runtime issue."""
