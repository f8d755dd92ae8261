"""``report.html``: one self-contained page describing a run folder, built only from what the folder holds
(``manifest.json`` and the stage artifacts), so it can be regenerated at any time.

Every picture is an inline base64 PNG; the page has no script and loads nothing from elsewhere.
A section whose artifact is absent (a failed or skipped stage) says so instead of failing.
"""

from __future__ import annotations

import base64
import dataclasses
import html
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image

from scdd._options import build_dataclass
from scdd.artifacts import atomic_path, load_tensors
from scdd.distilled import load_distilled
from scdd.errors import ArtifactError, ScddError
from scdd.report import REPORT_FILE, figures
from scdd.report.clustering import choose_classes, cluster_images
from scdd.report.config import ReportConfig
from scdd.run_folder import MANIFEST_FILE

DEFAULT_ARTIFACTS = {
    ("recover", "distilled"): "recover/distilled.safetensors",
    ("recover", "trajectory"): "recover/trajectory.safetensors",
}

_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem auto;max-width:1100px;color:#222;padding:0 1rem}
h1{font-size:1.6rem}h2{font-size:1.25rem;border-bottom:1px solid #ddd;padding-bottom:.2rem;margin-top:2rem}
table{border-collapse:collapse;margin:.5rem 0}td,th{border:1px solid #ccc;padding:.25rem .6rem;text-align:left}
td.num{text-align:right;font-variant-numeric:tabular-nums}th{background:#f3f3f3}
.grid{display:flex;flex-wrap:wrap;gap:1rem}.grid figure{margin:0}figcaption{font-size:.85rem;color:#555}
pre{background:#f7f7f7;padding:.8rem;overflow:auto;font-size:.8rem}.note{color:#777;font-style:italic}
img{image-rendering:pixelated}img.plot{image-rendering:auto;max-width:100%}
"""


class RunFolder:
    """A run folder: its manifest and where its stage artifacts are."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        manifest_path = self.root / MANIFEST_FILE
        if not manifest_path.is_file():
            raise ArtifactError(f"{self.root}: no {MANIFEST_FILE}; not an scdd run folder")
        try:
            self.manifest: dict[str, Any] = json.loads(manifest_path.read_text())
        except json.JSONDecodeError as error:
            raise ArtifactError(f"{manifest_path}: not valid JSON ({error})") from None

    @property
    def config(self) -> dict[str, Any]:
        return self.manifest.get("config") or {}

    @property
    def stages(self) -> dict[str, dict[str, Any]]:
        return self.manifest.get("stages") or {}

    def artifact(self, stage: str, key: str) -> Path | None:
        """The artifact's path as the manifest records it (or its default place); ``None`` if absent."""
        relative = (self.stages.get(stage, {}).get("artifacts") or {}).get(key) or DEFAULT_ARTIFACTS.get((stage, key))
        if relative is None:
            return None
        path = self.root / relative
        return path if path.exists() else None


def report_config(folder: RunFolder, override: ReportConfig | None) -> ReportConfig:
    """The explicit config, else the one the run recorded, else the defaults."""
    if override is not None:
        return override
    recorded = folder.config.get("report")
    if isinstance(recorded, dict):
        known = {f.name for f in dataclasses.fields(ReportConfig)}
        return build_dataclass(ReportConfig, {k: v for k, v in recorded.items() if k in known}, owner="report")
    return ReportConfig()


def write_report(
    run_dir: str | Path, out: str | Path | None = None, config: ReportConfig | None = None, *, check_classes: bool = False
) -> Path:
    """Build the report of ``run_dir`` and write it atomically (default ``RUN_DIR/report.html``).

    With ``check_classes`` an unknown clustering class is an error; otherwise the section notes it."""
    folder = RunFolder(run_dir)
    config = report_config(folder, config)
    distilled = folder.artifact("recover", "distilled")
    if check_classes and distilled is not None:
        choose_classes(config.cluster_classes, load_distilled(distilled).info.class_names)
    page = render_page(folder, config)
    path = Path(out) if out is not None else folder.root / REPORT_FILE
    with atomic_path(path) as tmp:
        tmp.write_text(page, encoding="utf-8")
    return path


def render_page(folder: RunFolder, config: ReportConfig) -> str:
    sections = [
        _header(folder),
        _section("Accuracy", lambda: _accuracy(folder)),
        _section("Distilled images", lambda: _class_grids(folder, config)),
        _section("Recovery loss trajectories (Fig. 5)", lambda: _trajectories(folder)),
        _section("Synthetic-image clustering (Fig. 7)", lambda: _clustering(folder, config)),
        _section("Squeeze", lambda: _squeeze(folder)),
        _section("Stage timings", lambda: _timings(folder)),
        _section("Resolved configuration", lambda: _pre(json.dumps(folder.config, indent=2))),
        _section("Environment", lambda: _environment(folder)),
    ]
    title = f"scdd run report: {html.escape(folder.root.resolve().name)}"
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
        f"<style>{_STYLE}</style></head>\n<body>\n<h1>{title}</h1>\n" + "\n".join(sections) + "\n</body></html>\n"
    )


def _section(title: str, body: Callable[[], str]) -> str:
    """A titled section; an artifact that cannot be read becomes a note rather than a failed report."""
    try:
        content = body()
    except ScddError as error:
        content = _note(str(error))
    return f"<section><h2>{html.escape(title)}</h2>\n{content}\n</section>"


def _note(text: str) -> str:
    return f'<p class="note">{html.escape(text)}</p>'


def _pre(text: str) -> str:
    return f"<pre>{html.escape(text)}</pre>"


def _img(png: bytes, alt: str, css_class: str = "") -> str:
    width, height = Image.open(io.BytesIO(png)).size
    data = base64.b64encode(png).decode("ascii")
    klass = f' class="{css_class}"' if css_class else ""
    return f'<img{klass} src="data:image/png;base64,{data}" width="{width}" height="{height}" alt="{html.escape(alt)}">'


def _table(header: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{html.escape(str(cell))}</th>" for cell in header)
    body = []
    for row in rows:
        cells = []
        for cell in row:
            numeric = isinstance(cell, (int, float))
            text = f"{cell:.2f}" if isinstance(cell, float) else str(cell)
            cells.append(f'<td class="num">{html.escape(text)}</td>' if numeric else f"<td>{html.escape(text)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _header(folder: RunFolder) -> str:
    config, manifest = folder.config, folder.manifest
    squeeze, align, recover = config.get("squeeze", {}), config.get("align", {}), config.get("recover", {})
    rows = [
        ["dataset", config.get("dataset", "?")],
        ["squeeze", f"{squeeze.get('pretrainer', '?')} on {squeeze.get('architecture', '?')}"],
        ["align", align.get("aligner", "?")],
        ["recover", f"{recover.get('matcher', '?')}, IPC {recover.get('ipc', '?')}, {recover.get('iterations', '?')} iterations"],
        ["students", ", ".join(config.get("posttrain", {}).get("students", []))],
        ["seed", manifest.get("seed", "?")],
        ["device", manifest.get("device", "?")],
        ["created", manifest.get("created", "?")],
        ["command", " ".join(manifest.get("command") or [])],
    ]
    return _table(["", ""], [[key, str(value)] for key, value in rows])


def _accuracy(folder: RunFolder) -> str:
    metrics = folder.manifest.get("metrics") or {}
    rows = []
    if "teacher" in metrics:
        rows.append(["teacher (aligned)", metrics["teacher"]["top1"], metrics["teacher"]["top5"]])
    for name, values in (metrics.get("students") or {}).items():
        rows.append([f"student {name}", values["top1"], values["top5"]])
    if not rows:
        return _note("no evaluation recorded in this run (a stage before evaluate did not finish)")
    table = _table(["model", "top-1 (%)", "top-5 (%)"], rows)
    return table + "<p>Held-out accuracy over the whole real held-out split.</p>"


def _class_grids(folder: RunFolder, config: ReportConfig) -> str:
    path = folder.artifact("recover", "distilled")
    if path is None:
        return _note("no distilled set in this run folder")
    distilled = load_distilled(path)
    names = distilled.info.class_names
    present = sorted(set(distilled.labels.tolist()))
    figures_html = []
    for label in present[: config.max_classes]:
        images = distilled.images[distilled.labels == label][: config.max_images_per_class]
        png = figures.class_grid_png(images)
        count = int((distilled.labels == label).sum())
        caption = f"class {names[label]} ({count} image{'' if count == 1 else 's'})"
        figures_html.append(f"<figure>{_img(png, caption)}<figcaption>{html.escape(caption)}</figcaption></figure>")
    note = ""
    if len(present) > config.max_classes:
        note = _note(f"showing {config.max_classes} of {len(present)} classes (report.max_classes)")
    summary = (
        f"<p>{len(distilled.labels)} images, IPC {distilled.ipc}, {distilled.info.image_size}px, "
        f"source: {html.escape(distilled.source)}.</p>"
    )
    return summary + '<div class="grid">' + "".join(figures_html) + "</div>" + note


def _trajectories(folder: RunFolder) -> str:
    path = folder.artifact("recover", "trajectory")
    if path is None:
        return _note("no recovery trajectory in this run folder")
    tensors, _ = load_tensors(path, "trajectory")
    loss_ce, loss_bn = tensors["loss_ce"], tensors["loss_bn"]
    png = figures.trajectory_png(loss_ce, loss_bn)
    rows = [
        ["L_BN", loss_bn[:, 0].mean().item(), loss_bn[:, -1].mean().item()],
        ["L_CE", loss_ce[:, 0].mean().item(), loss_ce[:, -1].mean().item()],
    ]
    table = _table(["loss", "first iteration", "last iteration"], rows)
    return (
        _img(png, "L_BN and L_CE per recovery iteration", "plot")
        + table
        + (f"<p>{loss_bn.shape[0]} recovery batches of {loss_bn.shape[1]} iterations; means over batches.</p>")
    )


def _clustering(folder: RunFolder, config: ReportConfig) -> str:
    path = folder.artifact("recover", "distilled")
    if path is None:
        return _note("no distilled set in this run folder")
    distilled = load_distilled(path)
    classes = choose_classes(config.cluster_classes, distilled.info.class_names)
    result = cluster_images(distilled.images, distilled.labels, classes, distilled.info.class_names, int(folder.manifest.get("seed", 0)))
    explained = ", ".join(f"{100 * value:.1f}%" for value in result.explained_variance)
    rows = []
    for cluster in sorted(set(result.clusters.tolist())):
        members = result.labels[result.clusters == cluster]
        rows.append([f"cluster {cluster}"] + [int((members == index).sum()) for index in result.class_indices])
    table = _table(["k-means cluster"] + [f"class {name}" for name in result.class_names], rows)
    return (
        _img(figures.cluster_png(result), "PCA + k-means of synthetic images", "plot")
        + table
        + f"<p>Classes {html.escape(', '.join(result.class_names))}: {len(result.labels)} images, "
        f"PCA explained variance {explained}; adjusted Rand index {result.adjusted_rand_index:.3f}, "
        f"purity {result.purity:.3f}.</p>"
    )


def _squeeze(folder: RunFolder) -> str:
    stage = folder.stages.get("squeeze") or {}
    curve = (stage.get("metrics") or {}).get("loss_per_epoch")
    if not curve:
        return _note("no squeeze recorded in this run folder")
    pretrainer = folder.config.get("squeeze", {}).get("pretrainer", "?")
    return _img(figures.squeeze_curve_png(curve, pretrainer), "squeeze loss per epoch", "plot")


def _timings(folder: RunFolder) -> str:
    if not folder.stages:
        return _note("no stage recorded")
    rows = [[name, info.get("status", "?"), float(info.get("seconds", 0.0))] for name, info in folder.stages.items()]
    rows.append(["total", "", sum(row[2] for row in rows)])
    return _table(["stage", "status", "seconds"], rows)


def _environment(folder: RunFolder) -> str:
    versions = folder.manifest.get("versions") or {}
    return _table(["package", "version"], [[name, str(version)] for name, version in versions.items()])
