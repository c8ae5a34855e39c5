"""The parts every method shares: batching, the hand-written training loop, metrics, run folders."""
