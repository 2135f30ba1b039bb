"""The agent's tools: the ``Tool`` protocol, the registry and the built-in tools."""
