"""The runtime: the agent loop, and what a run needs around it."""
