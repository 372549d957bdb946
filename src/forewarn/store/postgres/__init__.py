"""The PostgreSQL/PostGIS backend of the store (chosen by ``FOREWARN_DATABASE_URL``)."""
