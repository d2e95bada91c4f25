"""`memcube mcp`: MemCube for MCP clients (agents, IDEs), over stdio or streamable HTTP, through the SDK."""
