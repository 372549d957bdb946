"""Use cases over the store, and the one composition root that builds them from settings."""
