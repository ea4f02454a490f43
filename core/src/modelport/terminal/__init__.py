"""What a command shows in a terminal, used by every layer: captured third-party output, tables, sizes, redaction."""
