"""Built-in statistic matchers."""

from scdd.registry import hookimpl


@hookimpl
def register_matchers(register):
    register(
        "imbalanced-bn",
        "scdd.matchers.bn:build",
        config="scdd.matchers.bn:BNMatchConfig",
        description="SC-DD's imbalanced BN matching, Eq. 8 (first-BN multiplier 10x, per-layer or learnable weights)",
    )
    register(
        "bn",
        "scdd.matchers.bn:build_uniform",
        config="scdd.matchers.bn:UniformBNConfig",
        aliases=["sre2l-bn"],
        description="SRe²L's uniform batch-vs-global BN matching (every layer weight 1)",
    )
    register(
        "class-aware-bn",
        "scdd.matchers.class_aware:build",
        config="scdd.matchers.class_aware:ClassAwareBNConfig",
        aliases=["edc-bn"],
        description="EDC's soft category-aware matching: Eq. 8 mixed with class-conditional BN statistics of real images (reads training data)",
    )
