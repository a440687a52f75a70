"""Knowledge packs: documents from the repository, cut into chunks and indexed for search."""
