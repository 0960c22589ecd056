"""The Slack adapter (slack-bolt)."""
