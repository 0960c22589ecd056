"""What several test modules share: harnesses, helpers and fixtures, each beside its feature's name."""
