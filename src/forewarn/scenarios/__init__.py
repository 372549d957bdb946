"""Built-in scenarios (YAML files in this package)."""
