"""Built-in statistic matchers."""

from scdd.registry import hookimpl


@hookimpl
def register_matchers(register):
    register(
        "imbalanced-bn",
        "scdd.matchers.bn:build",
        config="scdd.matchers.bn:BNMatchConfig",
        description="SC-DD's imbalanced BN matching, Eq. 8 (first-BN multiplier 10x)",
    )
