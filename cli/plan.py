"""``scdd run --plan``: the resolved settings and the estimated wall time per stage, as comments of a recipe file."""

from __future__ import annotations

import click


def plan_lines(resolved, data, plan) -> list[str]:
    """The plan as text: what the run is, the settings sizing chose, each stage's estimate, a warning when long."""
    config, info, sizing = resolved.config, data.info, resolved.notes.get("sizing")
    lines = [
        f"scdd run: {config.dataset}, {len(data.train):,} training images of {info.channels}x{info.image_size}x{info.image_size} "
        f"in {info.num_classes} classes; {config.squeeze.pretrainer} on {config.squeeze.architecture}, IPC {config.recover.ipc}, "
        f"students {', '.join(config.posttrain.students)}"
    ]
    if sizing and sizing["settings"]:
        lines.append(f"settings sized to the data and the device ({sizing['inputs']['device']}; no preset applies):")
        width = max(len(setting) for setting, _, _ in sizing["settings"])
        lines += [f"  {setting:<{width}} = {value!r:<16} {reason}" for setting, value, reason in sizing["settings"]]
    return lines + estimate_lines(plan, config)


def estimate_lines(plan, config) -> list[str]:
    """Each stage's estimated wall time (one line each, then the total) and a warning when a CPU run passes an hour."""
    from scdd.timeplan import CPU_WARNING_SECONDS, shortening  # lazy: torch
    from scdd.unit_clock import format_seconds

    threads = f"{plan.threads} thread{'s' if plan.threads != 1 else ''}"
    lines = [f"estimated wall time on this machine ({plan.device}, {threads}; unit costs measured in {plan.probe_seconds:.0f} s):"]
    for stage in plan.stages:
        detail = f"{stage.units:,} units x {stage.unit_seconds:.3g} s + {stage.setup_seconds:.1f} s" if stage.units else "timed whole"
        lines.append(f"  {stage.stage:<10} {format_seconds(stage.seconds):>9}   {stage.what} ({detail})")
    cpu = format_seconds(plan.cpu_seconds + plan.probe_cpu_seconds)
    lines.append(f"  {'total':<10} {format_seconds(plan.seconds):>9}   (CPU time {cpu}, measurement included)")
    if plan.device == "cpu" and plan.seconds > CPU_WARNING_SECONDS:
        advice = shortening(plan, config)
        lines.append(
            f"warning: this run is estimated at {format_seconds(plan.seconds)} on this CPU, over an hour"
            + (f"; {advice} shortens it to about an hour" if advice else "")
            + " (a GPU: --device cuda)"
        )
    return lines


def print_plan(resolved) -> None:
    """Estimate the run (unless sizing measured it; its dataset loaded when sizing did not) and print the plan and the resolved settings
    as a recipe file: ``scdd run ... --plan > recipe.toml``."""
    from scdd.config import to_dict  # lazy: torch
    from scdd.data.loading import load_dataset
    from scdd.recipes import to_toml
    from scdd.runtime import resolve_device
    from scdd.timeplan import estimate_run

    data = resolved.data if resolved.data is not None else load_dataset(resolved.config)
    plan = resolved.plan or estimate_run(resolved.config, data, resolve_device(resolved.config.device))
    click.echo("\n".join("# " + line for line in plan_lines(resolved, data, plan)))
    reasons = {setting: reason for setting, _, reason in resolved.notes.get("sizing", {}).get("settings", [])}
    click.echo(to_toml(to_dict(resolved.config), reasons, header="\nthe resolved settings, as a recipe: scdd run --config FILE"))
