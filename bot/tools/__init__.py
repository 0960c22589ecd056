"""Tools the chat model may call during a turn: the registry, the metered loop, and the built-in tools."""
