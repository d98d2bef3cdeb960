"""Patch-based network inference over volumes: the global patch grid, the blending window,
the batched engine, test-time augmentation and how workers get the network."""
