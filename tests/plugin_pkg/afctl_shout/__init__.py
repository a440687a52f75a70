"""A test plugin for afctl."""
