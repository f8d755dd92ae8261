"""Built-in alignment strategies."""

from scdd.registry import hookimpl


@hookimpl
def register_aligners(register):
    register(
        "linear-probe",
        "scdd.align.linear_probe:build",
        config="scdd.align.linear_probe:LinearProbeConfig",
        aliases=["linear"],
        description="Linear probe: backbone and BN running statistics frozen (Sec. 2.2)",
    )
    register(
        "finetune",
        "scdd.align.finetune:build",
        config="scdd.align.finetune:FinetuneConfig",
        aliases=["fine-tune"],
        description="Fine-tuning: whole network trained, BN statistics move (Sec. 2.2's alternative)",
    )
    register(
        "pretrained-head",
        "scdd.align.pretrained_head:build",
        config="scdd.align.pretrained_head:PretrainedHeadConfig",
        aliases=["own-head"],
        description="The squeeze's own classification head, nothing trained (SRe²L's supervised teacher)",
    )
