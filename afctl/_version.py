"""The afctl version, read by the build and by `afctl --version`."""

__version__ = "0.2.0"
