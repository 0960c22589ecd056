"""teambot: the platform-free engine (commands, conversations, model calls)."""
