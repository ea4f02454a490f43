"""The modelport version: a leaf module, so core modules read it without importing the package namespace."""

__version__ = "0.1.0"
