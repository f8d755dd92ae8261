"""report.html: built by every run, regenerable from the folder, rendered by headless Chromium."""

import base64
import io
import json
import os
import re
import shutil
import subprocess

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from scdd.cli import cli
from scdd.errors import ArtifactError
from scdd.report import write_report
from scdd.report.clustering import cluster_images
from scdd.stages.coreset import coreset_random

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
IMG = re.compile(r'<img[^>]*src="data:image/png;base64,([^"]+)"[^>]*width="(\d+)" height="(\d+)"')
# Appended to a copy of the page: records every image's decoded width in the DOM once the page has loaded.
PROBE = """<script>window.addEventListener("load", () => {
  const images = Array.from(document.images);
  images.forEach(i => i.setAttribute("data-natural-width", String(i.naturalWidth)));
  document.body.setAttribute("data-images-checked", String(images.length));
});</script>"""


def _images(page):
    return [(Image.open(io.BytesIO(base64.b64decode(data))), int(w), int(h)) for data, w, h in IMG.findall(page)]


def test_run_writes_a_self_contained_report(tiny_run):
    out, record = tiny_run
    page = (out / "report.html").read_text()
    images = _images(page)
    # 10 class grids, the trajectories and the squeeze curve, all inline PNGs; at IPC 1 three classes
    # hold only three images, too few to cluster, and the clustering section says so.
    assert len(images) == 12 and page.count("<img") == 12
    assert all(image.size == (w, h) for image, w, h in images)
    assert "http://" not in page and "https://" not in page and "<script" not in page
    top1 = record.metrics["students"]["resnet10-slim"]["top1"]
    assert f"{top1:.2f}" in page
    for text in (
        "Recovery loss trajectories (Fig. 5)",
        "Synthetic-image clustering (Fig. 7)",
        "Stage timings",
        "Resolved configuration",
        "class 3 (1 image)",
        "clustering needs more than 3",
    ):
        assert text in page
    assert json.dumps(json.loads((out / "manifest.json").read_text())["config"]["recover"]["iterations"]) in page
    grid = images[0][0]
    assert grid.size[0] >= 84 and len(np.unique(np.asarray(grid))) > 2  # a real, upscaled digit, not a blank tile


@pytest.mark.skipif(
    CHROMIUM is None and not os.environ.get("CI"), reason="chromium is not installed here (.ci/run installs Debian's chromium)"
)
def test_report_renders_in_headless_chromium(tiny_run, tmp_path):
    assert CHROMIUM is not None, "CI must have chromium: .ci/run installs Debian's package"
    out, _ = tiny_run
    page = (out / "report.html").read_text()
    probed = tmp_path / "probed.html"
    probed.write_text(page.replace("</body>", PROBE + "</body>"))
    command = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--virtual-time-budget=10000",
        "--dump-dom",
        probed.as_uri(),
    ]
    dom = subprocess.run(command, capture_output=True, text=True, timeout=120).stdout
    expected = [w for _, w, _ in IMG.findall(page)]
    assert f'data-images-checked="{len(expected)}"' in dom, dom[-2000:]
    widths = re.findall(r'data-natural-width="(\d+)"', dom)
    assert widths == expected  # every image decoded at its own size
    assert "Accuracy" in dom and "resnet10-slim" in dom


def test_report_command_regenerates_from_the_folder_with_chosen_classes(tiny_run, mnist, tmp_path):
    """Swap the run's distilled set for 3 real images per class: the regenerated page shows them and clusters them."""
    out, _ = tiny_run
    run = tmp_path / "run"
    shutil.copytree(out, run)
    coreset_random(mnist, 3, run / "recover", seed=0)
    target = tmp_path / "again.html"
    result = CliRunner().invoke(cli, ["report", str(run), "--out", str(target), "--classes", "0,1"])
    assert result.exit_code == 0, result.output
    page = target.read_text()
    assert "class 7 (3 images)" in page and "source: coreset-random" in page
    assert page.count("<img") == 13  # now with the clustering scatter
    ari = float(re.search(r"adjusted Rand index (-?[0-9.]+)", page).group(1))
    assert "Classes 0, 1: 6 images" in page and 0.0 <= ari <= 1.0
    bad = CliRunner().invoke(cli, ["report", str(run), "--out", str(tmp_path / "bad.html"), "--classes", "3,eleven"])
    assert bad.exit_code != 0 and "no class 'eleven'" in bad.output
    assert not (tmp_path / "bad.html").exists()


def test_clustering_separates_separable_classes_and_not_noise():
    generator = torch.Generator().manual_seed(0)
    labels = torch.arange(3).repeat_interleave(8)
    centres = torch.rand(3, 1, 8, 8, generator=generator)
    separable = centres[labels] + 0.01 * torch.randn(24, 1, 8, 8, generator=generator)
    result = cluster_images(separable, labels, [0, 1, 2], ("a", "b", "c"), seed=0)
    assert result.adjusted_rand_index == 1.0 and result.purity == 1.0
    assert result.coordinates.shape == (24, 3)
    noise = torch.rand(24, 1, 8, 8, generator=generator)
    assert cluster_images(noise, labels, [0, 1, 2], ("a", "b", "c"), seed=0).adjusted_rand_index < 0.5


def test_partial_run_folder_gets_notes_not_failures(tiny_run, tmp_path):
    out, _ = tiny_run
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["stages"] = {"squeeze": manifest["stages"]["squeeze"]}
    manifest["metrics"] = {}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    page = write_report(tmp_path).read_text()
    assert "no distilled set in this run folder" in page
    assert "no evaluation recorded" in page
    assert page.count("<img") == 1  # the squeeze curve only
    with pytest.raises(ArtifactError, match="not an scdd run folder"):
        write_report(tmp_path / "nowhere")


def test_unknown_cluster_class_fails_a_run_before_any_work(tmp_path):
    result = CliRunner().invoke(cli, ["run", "--set", "report.cluster_classes=3,eleven", "--out", str(tmp_path / "run"), "--quiet"])
    assert result.exit_code != 0 and "report: no class 'eleven'" in result.output
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("command", [["report"], ["bench"], ["inspect"], ["inspect", "bn-stats"]])
def test_help_for_analysis_commands(command):
    result = CliRunner().invoke(cli, [*command, "--help"])
    assert result.exit_code == 0 and "Usage:" in result.output
