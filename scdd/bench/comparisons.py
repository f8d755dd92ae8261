"""Paired comparisons of a bench's summary rows (``scdd.bench.results``): each row's gain over random
real images with identical labels, the reading of where SC-DD stands, and the cross-teacher table."""

from __future__ import annotations

from typing import Any

from scdd.bench.gain import Measured, paired_gain


def measured(row: dict[str, Any]) -> Measured:
    return Measured(dict(zip(row["seed_list"], row["top1_per_seed"], strict=False)), row["label_identity"], row["labels"])


def add_gains(rows: list[dict[str, Any]]) -> None:
    """Each row's paired gain over the random-real row with identical labels (same IPC and student).

    A row with no such baseline gets no gain and a note: the random-real row was relabelled by another
    teacher (the row is not comparable to it), or the suite has no random-real row."""
    for row in rows:
        row.update(gain_mean=None, gain_std=None, gain_per_seed=None, gain_note="")
        if row["role"] == "random-real":
            row["gain_note"] = "baseline"
            continue
        peers = [
            other for other in rows if other["role"] == "random-real" and (other["ipc"], other["student"]) == (row["ipc"], row["student"])
        ]
        same = next((other for other in peers if other["label_identity"] == row["label_identity"]), None)
        if same is not None:
            gain = paired_gain(measured(row), measured(same))
            row.update(gain_mean=gain.mean, gain_std=gain.std, gain_per_seed=[gain.per_seed[seed] for seed in gain.seeds])
        elif peers:
            row["gain_note"] = f"labels by {row['labels']}, random real's by {peers[0]['labels']}: not comparable"
        else:
            row["gain_note"] = "no random-real row"


def verdict(mean: float, std: float) -> str:
    """A paired difference no larger than the standard deviation of its per-seed values is within noise."""
    return "within noise" if abs(mean) <= std else ("ahead" if mean > 0 else "behind")


def reading(rows: list[dict[str, Any]]) -> list[str]:
    """Where each SC-DD row stands against random real images and SRe²L, per IPC and student, compared
    only with rows whose students learnt from identical labels (paired by seed, ``scdd.bench.gain``)."""
    lines = []
    wins = {"random real": [0, 0], "SRe²L": [0, 0]}
    for row in (row for row in rows if row["role"] == "sc-dd" and row["table"] == "main"):
        head = (
            f"IPC {row['ipc']}, {row['student']}: {row['label']} {row['top1_mean']:.1f} ± {row['top1_std']:.1f} (labels: {row['labels']})"
        )
        parts = []
        if row["gain_mean"] is not None:
            call = verdict(row["gain_mean"], row["gain_std"])
            wins["random real"][1] += 1
            wins["random real"][0] += int(call == "ahead")
            parts.append(f"{row['gain_mean']:+.1f} ± {row['gain_std']:.1f} points over random real ({call})")
        else:
            parts.append(f"no gain over random real ({row['gain_note']})")
        sre2l = [
            other
            for other in rows
            if other["role"] == "sre2l"
            and other["label_identity"] == row["label_identity"]
            and (other["ipc"], other["student"]) == (row["ipc"], row["student"])
        ]
        # at equal budget: the SRe²L rows recovered with the same settings, where the suite has them
        sre2l = [other for other in sre2l if other["recovery_budget"] == row["recovery_budget"]] or sre2l
        for other in sre2l:
            difference = paired_gain(measured(row), measured(other))
            call = verdict(difference.mean, difference.std)
            wins["SRe²L"][1] += 1
            wins["SRe²L"][0] += int(call == "ahead")
            parts.append(f"{difference} vs {other['label']} ({call})")
        lines.append(head + ": " + "; ".join(parts))
    for name, (ahead, total) in wins.items():
        if total:
            lines.append(f"SC-DD rows clearly ahead of {name} (identical labels) in {ahead} of {total} comparisons.")
    return lines


def cross_table(rows: list[dict[str, Any]], suite: Any) -> list[dict[str, Any]]:
    """The cross-teacher table: each ``cross_rows`` row's top-1 and gain with labels by each teacher."""
    if not suite.cross_rows:
        return []
    table = []
    names = [row.label for row in suite.rows if row.label in suite.cross_rows]
    for label in names:
        for found in (row for row in rows if row["label"] == label):
            table.append(
                {
                    key: found[key]
                    for key in (
                        "label",
                        "ipc",
                        "student",
                        "labels",
                        "label_teacher_top1",
                        "top1_mean",
                        "top1_std",
                        "gain_mean",
                        "gain_std",
                        "gain_note",
                    )
                }
            )
    return sorted(table, key=lambda entry: (entry["ipc"], entry["student"], names.index(entry["label"]), entry["labels"]))
