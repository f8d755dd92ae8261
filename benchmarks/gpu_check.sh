#!/usr/bin/env bash
# The GPU check of scdd's speed work, for one CUDA device, in at most 8 minutes: the CUDA tests
# (tests/test_cuda.py: channels-last and bf16 autocast against the plain path) and the speed
# benchmark at the CIFAR and ImageNet shapes (benchmarks/speed.py), written to one JSON file.
#
#   bash benchmarks/gpu_check.sh [OUT.json]        (default gpu_check.json; run from the repository root)
set -u
out=${1:-gpu_check.json}
work=$(mktemp -d)
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader > "$work/gpu.txt" 2>&1
timeout 120 python -m pytest -q -p no:cacheprovider tests/test_cuda.py tests/test_memory_format.py > "$work/tests.txt" 2>&1
echo $? > "$work/tests.rc"
timeout 180 python benchmarks/speed.py --device cuda --iterations 10 --repeats 3 --json "$work/speed.json" > "$work/speed.txt" 2>&1
echo $? > "$work/speed.rc"
timeout 120 python benchmarks/speed.py --device cuda --iterations 10 --repeats 3 --memory-format channels-last \
    --shapes cifar,imagenet-r50-b100 --json "$work/speed_cl.json" > "$work/speed_cl.txt" 2>&1
echo $? > "$work/speed_cl.rc"
python - "$work" "$out" <<'PY'
import json, pathlib, sys
work, out = pathlib.Path(sys.argv[1]), sys.argv[2]
read = lambda name: (work / name).read_text() if (work / name).exists() else ""
report = {
    "gpu": read("gpu.txt").strip(),
    "tests": {"exit": int(read("tests.rc") or -1), "tail": read("tests.txt")[-3000:]},
    "speed": {"exit": int(read("speed.rc") or -1), "tail": read("speed.txt")[-3000:],
              "results": json.loads(read("speed.json")) if read("speed.json") else None},
    "speed_channels_last": {"exit": int(read("speed_cl.rc") or -1), "tail": read("speed_cl.txt")[-2000:],
                            "results": json.loads(read("speed_cl.json")) if read("speed_cl.json") else None},
}
pathlib.Path(out).write_text(json.dumps(report, indent=1))
print(f"wrote {out}: tests exit {report['tests']['exit']}, speed exit {report['speed']['exit']}")
PY
