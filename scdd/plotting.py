"""matplotlib, always with the non-interactive Agg backend, and figures as PNG bytes."""

from __future__ import annotations

import io
from typing import Any


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the Agg backend (no display needed), imported on first use."""
    import matplotlib  # lazy: matplotlib is slow to import and only figures need it

    matplotlib.use("Agg", force=True)  # before pyplot is imported, so no display is needed
    import matplotlib.pyplot as plt  # lazy: see above

    return plt


def figure_png(figure: Any, dpi: int = 100) -> bytes:
    """Render a figure to PNG bytes and close it."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    pyplot().close(figure)
    return buffer.getvalue()
