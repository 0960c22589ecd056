"""Every SQL statement and storage rule, written once for SQLite and PostgreSQL."""
