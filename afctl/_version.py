"""The afctl version, read by the build and by `afctl --version`."""

__version__ = "0.1.0"
