"""Python tools of this repository, referenced by Tool manifests as `tools.<module>:<function>`."""
