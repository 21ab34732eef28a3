"""The one training engine: loop, loss, assigner, EMA, mixed precision, checkpoints (local, DDP, Ray, Tune)."""
