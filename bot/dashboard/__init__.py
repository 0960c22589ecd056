"""What the web dashboard needs from the engine: sign-in, spend, limits and the prompt library.

No HTTP here (adapters/web serves it): these functions take a session and return records to render.
"""
