"""The export folder: its record (``export.json``), side files, ``metadata.json``, atomic staging and trust seals."""
