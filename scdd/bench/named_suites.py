"""The named suites of ``scdd bench --suite``: the fair benchmark and one suite per claim of the paper,
as plain data that ``scdd.bench.suites.suite_from_dict`` builds and checks.

Budget of ``fair`` on the embedded data (the ``small`` preset; unit costs measured with one torch
thread on a shared 2-core machine, on the 3,200-image validation carve): the supervised teacher
(15 epochs) ≈ 90-100 s and the MoCo v3 teacher (10 epochs + an 80-epoch probe) ≈ 290 s, shared by
every IPC and seed; per seed, each cell's relabelling + post-training ≈ 26 s at IPC 1 (2,000 epochs
of 10 images), ≈ 28 s at IPC 10 (200 epochs) and ≈ 47 s at IPC 50 (50 epochs), plus the recoveries.
21 cells per seed (main table and cross-teacher table) come to ≈ 1,000 s a seed: ≈ 57 min for IPC 1,
10 and 50 with 3 seeds (an estimate from these unit costs, not a measured end-to-end run).
``benchmarks/bench_budget.py`` measures the unit costs on the machine at hand and prints the estimate.
"""

from __future__ import annotations

from typing import Any

from scdd.bench.suites import Suite, suite_from_dict
from scdd.errors import ConfigError

_SC_DD: dict[str, Any] = {"method": "distill", "aligner": "linear-probe", "matcher": "imbalanced-bn", "role": "sc-dd"}
_SRE2L = {"method": "distill", "pretrainer": "supervised", "aligner": "linear-probe", "matcher": "bn", "role": "sre2l"}

# SRe²L's recipe: its supervised model as trained (own head), first BN layer ×10 as in its recovery code.
_SRE2L_RECIPE: dict[str, Any] = {
    "method": "distill",
    "pretrainer": "supervised",
    "aligner": "pretrained-head",
    "matcher": "bn",
    "role": "sre2l",
    "overrides": {"recover": {"matcher_options": {"first_bn_multiplier": 10.0}}},
}
_SUPERVISED = {"pretrainer": "supervised", "aligner": "pretrained-head"}
# Post-training epochs by IPC under the `small` preset (its 200 serve IPC 10), chosen on the validation carve
# with random real images: the smallest budget within 0.5 points of the longest tried (IPC 1: still rising at
# 2,000 epochs, the longest the suite's time allows).
_SMALL_BY_IPC = {"1": {"posttrain": {"epochs": 2000}}, "50": {"posttrain": {"epochs": 50}}}
_RANDOM_REAL = {"label": "random real", "method": "coreset", "selection": "random", "role": "random-real"}
_FAIR_TEACHERS = {"supervised": _SUPERVISED, "moco-v3": {"pretrainer": "moco-v3", "aligner": "linear-probe"}}
_FAIR_ROWS = [
    {"label": "SC-DD (MoCo v3)", "pretrainer": "moco-v3", **_SC_DD},
    {"label": "SRe²L", **_SRE2L_RECIPE},
    _RANDOM_REAL,
    {"label": "herding real", "method": "coreset", "selection": "herding", **_SUPERVISED, "role": "herding-real"},
]
_SSL_ROWS = [
    {"label": f"SC-DD ({name})", "pretrainer": pretrainer, **_SC_DD}
    for name, pretrainer in (("MoCo v2", "moco-v2"), ("MoCo v3", "moco-v3"), ("SwAV", "swav"), ("DINO", "dino"))
]


def _claim(description: str, rows: list[dict[str, Any]], ipc: tuple[int, ...] = (1, 10)) -> dict[str, Any]:
    """A claim suite: the ``small`` preset's budget, seeds 0-2, one supervised teacher relabelling every row."""
    return {
        "description": description,
        "preset": "small",
        "ipc": list(ipc),
        "ipc_overrides": _SMALL_BY_IPC,
        "seeds": [0, 1, 2],
        "teachers": {"supervised": _SUPERVISED},
        "labels": "supervised",
        "rows": rows,
    }


SUITES: dict[str, dict[str, Any]] = {
    "fair": {
        "description": "SC-DD vs SRe²L vs real images with identical labels (one supervised teacher relabels every "
        "row; paired gain over random real), plus the cross-teacher table; the `small` preset's budget",
        "preset": "small",
        "ipc": [1, 10, 50],
        "ipc_overrides": _SMALL_BY_IPC,
        "seeds": [0, 1, 2],
        "teachers": _FAIR_TEACHERS,
        "labels": "supervised",
        "cross_teachers": ["supervised", "moco-v3"],
        "cross_rows": ["SC-DD (MoCo v3)", "SRe²L", "random real"],
        "rows": _FAIR_ROWS,
    },
    "table1": _claim(
        "Table 1's claim, SC-DD > SRe²L at equal budget: SC-DD with each SSL pretrainer against SRe²L's "
        "recipe (own head, first BN ×10) and its ×1 / re-trained-probe ablation, every row relabelled by one "
        "supervised teacher",
        [
            *_SSL_ROWS,
            {"label": "SRe²L", **_SRE2L_RECIPE},
            {"label": "SRe²L (first BN ×1, re-trained probe)", **_SRE2L},
            _RANDOM_REAL,
        ],
    ),
    "scaling": _claim(
        "Fig. 2's claim, a larger recovery model helps SC-DD and hurts SRe²L: ConvNet widths 16, 32 and 64 "
        "recover for both, one supervised width-64 teacher relabels every row",
        [
            *(
                {
                    "label": f"{name} (width {width})",
                    **kind,
                    "overrides": {**kind.get("overrides", {}), "squeeze": {"architecture_options": {"width": width}}},
                }
                for width in (16, 32, 64)  # a ladder that runs on 2 CPU cores
                for name, kind in (("SC-DD (MoCo v3)", {"pretrainer": "moco-v3", **_SC_DD}), ("SRe²L", _SRE2L_RECIPE))
            ),
            _RANDOM_REAL,
        ],
    ),
    "first-bn": _claim(
        "Table 5's claim, the first-BN multiplier of Eq. 8 peaks near 10×: one MoCo v3 teacher recovers "
        "with 1×, 5×, 10×, 15×, 20×; one supervised teacher relabels every row",
        [
            *(
                {
                    "label": f"first BN ×{multiplier}",
                    "pretrainer": "moco-v3",
                    **_SC_DD,
                    "overrides": {"recover": {"matcher_options": {"first_bn_multiplier": float(multiplier)}}},
                }
                for multiplier in (1, 5, 10, 15, 20)
            ),
            _RANDOM_REAL,
        ],
    ),
    "alignment": _claim(
        "Sec. 2.2's claim, a linear probe recovers better than fine-tuning: one MoCo v3 squeeze aligned "
        "both ways, and probed once more with its BN statistics re-estimated on the labelled images (what "
        "fine-tuning changes in the statistics, without what it changes in the weights); one supervised "
        "teacher relabels every row",
        [
            {"label": "SC-DD (MoCo v3, linear probe)", "pretrainer": "moco-v3", **_SC_DD},
            {
                "label": "SC-DD (MoCo v3, fine-tuned)",
                "pretrainer": "moco-v3",
                **{**_SC_DD, "aligner": "finetune"},
                "overrides": {"align": {"aligner_options": {"epochs": 10, "lr": 0.01, "batch_size": 256, "crop_min_scale": 0.8}}},
            },
            {
                "label": "SC-DD (MoCo v3, linear probe, BN statistics of the labelled images)",
                "pretrainer": "moco-v3",
                **_SC_DD,
                "overrides": {"align": {"aligner_options": {"bn_statistics": "labelled"}}},
            },
            _RANDOM_REAL,
        ],
    ),
    "bn-spread": _claim(
        "Table 2 / Fig. 4's claim, SSL BN statistics spread more than supervised ones: every pretrainer's "
        "teacher with its BatchNorm statistics, and the recovery each makes at IPC 1 (one supervised teacher labels)",
        [
            *_SSL_ROWS,
            {"label": "SRe²L", **_SRE2L_RECIPE},
            _RANDOM_REAL,
        ],
        ipc=(1,),
    ),
}


def get_suite(name: str) -> Suite:
    """The named suite ``name``, built and checked."""
    try:
        return suite_from_dict(name, SUITES[name])
    except KeyError:
        raise ConfigError(f"unknown suite {name!r}; suites: {', '.join(SUITES)}") from None
