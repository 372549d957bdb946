"""Geometry and geodesy: footprints, 4D volumes and the spatio-temporal index (no I/O)."""
