"""Built-in squeeze objectives."""

from scdd.registry import hookimpl


@hookimpl
def register_pretrainers(register):
    register(
        "moco-v2",
        "scdd.ssl.moco_v2:build",
        config="scdd.ssl.moco_v2:MoCoV2Config",
        aliases=["mocov2"],
        description="MoCo v2: momentum key encoder, queue of negatives, InfoNCE, MLP head",
    )
    register(
        "moco-v3",
        "scdd.ssl.moco_v3:build",
        config="scdd.ssl.moco_v3:MoCoV3Config",
        aliases=["mocov3"],
        description="MoCo v3: momentum encoder, projector + predictor, symmetric in-batch InfoNCE",
    )
    register(
        "swav",
        "scdd.ssl.swav:build",
        config="scdd.ssl.swav:SwAVConfig",
        description="SwAV: prototypes, Sinkhorn-Knopp codes, swapped prediction, multi-crop",
    )
    register(
        "dino",
        "scdd.ssl.dino:build",
        config="scdd.ssl.dino:DINOConfig",
        description="DINO: momentum teacher with centering and sharpening, multi-crop",
    )
    register(
        "supervised",
        "scdd.ssl.supervised:build",
        config="scdd.ssl.supervised:SupervisedConfig",
        aliases=["sre2l"],
        description="Supervised cross-entropy squeeze (the SRe²L baseline)",
    )
