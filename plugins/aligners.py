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
