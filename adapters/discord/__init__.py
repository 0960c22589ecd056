"""The Discord adapter (discord.py)."""
