"""Built-in plugins: ordinary plugin modules registered through the same path as entry points."""
