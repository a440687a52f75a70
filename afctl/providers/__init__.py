"""Model providers: one adapter per API family behind one small async interface."""
