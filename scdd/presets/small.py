"""The ``small`` preset: the budget of the ``fair`` bench suite, for any 10-class dataset of 8-32 px
images on 2 CPU cores, grayscale or colour.

Every value was chosen on the validation carve of mnist5k's training images (``eval_split =
"validation"``) and checked on the digits datasets (see the README's "Measured" section); each is
scdd's own choice (``SCDD_SOURCE`` in ``scdd presets show``), not the paper's.
"""

from __future__ import annotations

from typing import Any

from scdd.presets.mnist5k import MNIST5K

_MNIST5K_SQUEEZE = MNIST5K["squeeze"]
# the multi-crop methods keep the embedded default's budget (4 small views, short warm-ups)
_MNIST5K_BY_NAME = _MNIST5K_SQUEEZE["pretrainer_options_by_name"]

SMALL: dict[str, Any] = {
    "squeeze": {
        "architecture": "convnet",
        "architecture_options": {"width": 64, "depth": 3},
        # the embedded default's optimiser and heads (batch 256, lr 0.1, T 0.2, MLP 512 → 128, crops from 0.3),
        # 10 epochs, and at least 150 optimiser steps on small training sets
        "pretrainer_options": {**_MNIST5K_SQUEEZE["pretrainer_options"], "epochs": 10, "min_steps": 150},
        "pretrainer_options_by_name": {
            "supervised": {"crop_min_scale": 0.8, "epochs": 15},
            "moco-v2": {"queue_size": 2048, "encoder_momentum": 0.99},
            "swav": _MNIST5K_BY_NAME["swav"],
            "dino": _MNIST5K_BY_NAME["dino"],
        },
    },
    "align": {"aligner_options": {"epochs": 80, "augment": False, "lr": 0.1, "batch_size": 256}},
    "recover": {"iterations": 300, "batch_size": 100, "lr": 0.25, "alpha_bn": 0.03, "crop_min_scale": 0.5},
    "relabel": {"crop_min_scale": 0.25},
    "posttrain": {
        "students": ["convnet"],
        "student_options": {"convnet": {"width": 32, "depth": 3}},
        "epochs": 200,
        "batch_size": 50,
        "lr": 0.005,
        "temperature": 2.0,
    },
}
