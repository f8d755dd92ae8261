"""Built-in squeeze objectives."""

from scdd.registry import hookimpl


@hookimpl
def register_pretrainers(register):
    register(
        "moco-v3",
        "scdd.ssl.moco_v3:build",
        config="scdd.ssl.moco_v3:MoCoV3Config",
        aliases=["mocov3"],
        description="MoCo v3: momentum encoder, projector + predictor, symmetric in-batch InfoNCE",
    )
    register(
        "supervised",
        "scdd.ssl.supervised:build",
        config="scdd.ssl.supervised:SupervisedConfig",
        aliases=["sre2l"],
        description="Supervised cross-entropy squeeze (the SRe²L baseline)",
    )
