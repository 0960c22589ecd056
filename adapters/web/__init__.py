"""The web dashboard over HTTP (aiohttp): sign-in from the chat, spend, budgets and the prompt library."""
