"""Model building: registered backbones wrapped into scdd's ``Classifier``."""

from scdd.models.build import build_backbone, build_classifier
from scdd.models.classifier import Classifier, Normalize, batchnorm_layers, batchnorm_state

__all__ = ["Classifier", "Normalize", "batchnorm_layers", "batchnorm_state", "build_backbone", "build_classifier"]
