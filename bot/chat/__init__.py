"""The chat turn: the engine, conversations, the context window, tokens."""
