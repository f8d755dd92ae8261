"""scdd: dataset distillation by self-supervised compression (SC-DD), as a plugin framework.

The stage functions (``scdd.stages``) and ``scdd.pipeline.run_pipeline`` are the library API;
the ``scdd`` command is a thin layer over them. ``scdd.load_distilled(run_dir)`` gives a finished
run's distilled set with its soft labels as a torch dataset, for any training loop.
Importing this package does not import torch.
"""

__version__ = "0.1.0"
__all__ = ["__version__", "load_distilled"]


def __getattr__(name: str):
    """``scdd.load_distilled``, imported on first use (it needs torch; importing scdd does not)."""
    if name == "load_distilled":
        from scdd.replay_dataset import load_distilled  # lazy: torch

        return load_distilled
    raise AttributeError(f"module 'scdd' has no attribute {name!r}")
