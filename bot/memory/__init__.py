"""Semantic memory: embeddings, recall, /search, and who may see which channel."""
