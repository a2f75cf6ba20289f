"""Self-contained HTML reports of fits and studies (``bayesmoe report DIR``)."""

from bayesmoe.report.core import write_report
from bayesmoe.report.fit import write_fit_report, write_measure_report
from bayesmoe.report.study import contraction_slopes, selection_frequencies, write_study_report

__all__ = [
    "contraction_slopes",
    "selection_frequencies",
    "write_fit_report",
    "write_measure_report",
    "write_report",
    "write_study_report",
]
