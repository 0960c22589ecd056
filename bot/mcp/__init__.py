"""Team tools from Model Context Protocol servers: their configuration, the connections, and their tools."""
