"""Built-in recovery crop-scale schedules and extra objective terms (none of them in the paper's recipe but ``constant``)."""

from scdd.registry import hookimpl

SCHEDULES = "scdd.recovery.schedules"


@hookimpl
def register_crop_schedules(register):
    register(
        "constant",
        f"{SCHEDULES}:build_constant",
        config=f"{SCHEDULES}:ConstantScheduleConfig",
        description="the configured crop scales at every recovery step (the paper's)",
    )
    register(
        "curriculum",
        f"{SCHEDULES}:build_curriculum",
        config=f"{SCHEDULES}:CurriculumConfig",
        aliases=["cda"],
        description="CDA's easy-to-hard crops: the lower crop scale falls from large to the configured one",
    )


@hookimpl
def register_regularizers(register):
    register(
        "flatness",
        "scdd.recovery.regularizers:build_flatness",
        config="scdd.recovery.regularizers:FlatnessConfig",
        description="EDC's flatness term: KL between the teacher's logits on the images and on their EMA",
    )
