"""Outbound network fetches of addresses that others choose (provider image links; later, web pages)."""
