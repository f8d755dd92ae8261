"""scdd: dataset distillation by self-supervised compression (SC-DD), as a plugin framework.

The stage functions (``scdd.stages``) and ``scdd.pipeline.run_pipeline`` are the library API;
the ``scdd`` command is a thin layer over them. Importing this package does not import torch.
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
