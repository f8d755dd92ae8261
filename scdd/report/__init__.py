"""The run report: a self-contained ``report.html`` built from a run folder."""

from scdd.report.config import ReportConfig

REPORT_FILE = "report.html"


def write_report(run_dir, out=None, config=None, *, check_classes=False):
    """Build ``RUN_DIR/report.html`` (or ``out``) from the run folder; see ``scdd.report.page``."""
    from scdd.report.page import write_report as _write  # lazy: the page imports matplotlib and every artifact reader

    return _write(run_dir, out, config, check_classes=check_classes)


__all__ = ["REPORT_FILE", "ReportConfig", "write_report"]
