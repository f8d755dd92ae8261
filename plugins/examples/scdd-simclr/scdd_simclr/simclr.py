"""SimCLR (Chen et al., 2020): two views through the backbone and a 2-layer head, NT-Xent over the batch.
scdd's ``Pretrainer`` runs the epochs (Table 14, resumable); views are scdd's, head and loss lightly's."""

from dataclasses import dataclass

from lightly.loss import NTXentLoss
from lightly.models.modules import SimCLRProjectionHead

from scdd.augment import CropSpec, ViewSpec
from scdd.ssl.base import PretrainConfig, Pretrainer


@dataclass
class SimCLRConfig(PretrainConfig):
    """SimCLR's settings: τ = 0.5, a 2048-128 head, crops from 8%, colour jitter of strength 1 (p = 0.8)."""

    temperature: float = 0.5
    hidden_dim: int = 2048
    output_dim: int = 128
    crop_min_scale: float = 0.08
    jitter_strength: float = 1.0


class SimCLRPretrainer(Pretrainer):
    name = "simclr"

    def build(self, encoder, data):
        config, jitter = self.config, 0.8 * self.config.jitter_strength
        crop = CropSpec(scale=(config.crop_min_scale, 1.0))
        self.spec = ViewSpec(crop=crop, flip_p=self.flip_p, brightness=jitter, contrast=jitter, saturation=jitter)
        self.head = SimCLRProjectionHead(encoder.num_features, config.hidden_dim, config.output_dim)
        self.encoder, self.criterion = encoder, NTXentLoss(temperature=config.temperature)
        return {"encoder": encoder, "head": self.head}

    def loss(self, images, labels, step, total):
        first, second = self.view(images, self.spec), self.view(images, self.spec)
        return self.criterion(self.head(self.encoder(first)), self.head(self.encoder(second)))


build = SimCLRPretrainer
