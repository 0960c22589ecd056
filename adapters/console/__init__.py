"""The console adapter: a person (or a pipe) at a terminal."""
