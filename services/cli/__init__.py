"""The `memcube` command: it sits above the API, the workers and the MCP server, and starts them."""
