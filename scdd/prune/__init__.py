"""Data-free pruning with a distilled set (paper Sec. 3.5): network slimming (``slimming``), size
measurement (``measure``) and the stage itself (``stage.prune``, run by ``scdd prune``, a command the
``prune`` plugin registers). The channel groups a network has and the surgery that shrinks them are
``scdd.models.channel_groups`` and ``scdd.models.surgery``: a pruned artifact rebuilds through them.

Importing this package, or ``command``, does not import torch.
"""
