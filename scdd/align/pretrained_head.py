"""The squeeze's own head as the teacher's head, with no training: SRe²L's teacher.

SRe²L recovers from and relabels with the supervised model as trained, head included; re-training a
probe on its frozen backbone is another teacher. A squeeze that trains a classification head with
the backbone (the ``supervised`` pretrainer) saves it beside the backbone, and the align stage hands
it to this aligner, which loads it into the classifier and leaves every weight and BN statistic as
the squeeze left them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch

from scdd.data.base import DatasetSplits
from scdd.errors import ConfigError
from scdd.models.classifier import Classifier
from scdd.progress import SILENT, Progress


@dataclass
class PretrainedHeadConfig:
    """No options: nothing is trained."""


class PretrainedHead:
    uses_pretrained_head = True  # the align stage passes the squeeze's head as ``pretrained_head``

    def __init__(self, config: PretrainedHeadConfig) -> None:
        self.config = config

    def align(
        self,
        classifier: Classifier,
        data: DatasetSplits,
        *,
        device: torch.device,
        seed: int,
        progress: Progress = SILENT,
        pretrained_head: Mapping[str, torch.Tensor] | None = None,
    ) -> Classifier:
        if pretrained_head is None:
            raise ConfigError(
                "aligner 'pretrained-head' needs a backbone squeezed with a classification head (the supervised "
                "pretrainer keeps one); this backbone has none"
            )
        try:
            classifier.head.load_state_dict(dict(pretrained_head))
        except RuntimeError as error:
            raise ConfigError(f"the squeeze's head does not fit this classifier: {str(error).splitlines()[0]}") from None
        return classifier.to(device).eval()


def build(config: PretrainedHeadConfig) -> PretrainedHead:
    return PretrainedHead(config)
