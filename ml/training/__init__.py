"""Generic training helpers shared by the trainable models (see :mod:`ml.training.loop`)."""
from .loop import (LoopConfig, LoopResult, ProgressInfo, atomic_torch_save, latest_checkpoint,
                   load_checkpoint, move_to, read_log, run_training, save_checkpoint)

__all__ = ["LoopConfig", "LoopResult", "ProgressInfo", "run_training", "save_checkpoint",
           "load_checkpoint", "latest_checkpoint", "move_to", "atomic_torch_save", "read_log"]
