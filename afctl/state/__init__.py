"""The applied state of a workspace: resources, revisions, locks; plans and applies."""
