"""Run reports and history: a self-contained HTML report per run, comparisons, the runs list, exports."""
from .data import RunNotFound, compare, load_report, runs_list
from .export import export
from .render import ReportError, render_compare, render_report, render_runs

__all__ = ["RunNotFound", "ReportError", "load_report", "compare", "runs_list", "export", "render_report",
           "render_compare", "render_runs"]
