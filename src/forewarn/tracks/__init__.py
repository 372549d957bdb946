"""Live tracks: position feeds, their quality checks, conformance to notified volumes and predicted conflicts."""
