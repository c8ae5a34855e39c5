"""The parts every method shares: batching, the hand-written training loop, checkpoints, metrics."""
