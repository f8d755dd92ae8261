"""Built-in recovery initializers: the paper's noise, real images, and RDED's stitched patches."""

from scdd.registry import hookimpl

MODULE = "scdd.recovery.initializers"


@hookimpl
def register_initializers(register):
    register(
        "noise",
        f"{MODULE}:build_noise",
        config=f"{MODULE}:NoiseConfig",
        aliases=["gaussian"],
        description="Gaussian noise in normalised space, the paper's start (data-free)",
    )
    register(
        "real",
        f"{MODULE}:build_real",
        config=f"{MODULE}:RealConfig",
        description="real training images of the class, random or teacher-confident (EDC, SRe²L++; reads training data)",
    )
    register(
        "patches",
        f"{MODULE}:build_patches",
        config=f"{MODULE}:PatchesConfig",
        aliases=["rded"],
        description="the teacher's most confident real crops, factor² stitched per image (RDED; reads training data)",
    )
