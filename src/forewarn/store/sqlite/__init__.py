"""The embedded SQLite backend of the store (the default)."""
