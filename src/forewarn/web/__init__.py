"""The operations-centre page (static assets shipped in the package) and the offline situation map."""
