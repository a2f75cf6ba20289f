"""``write_report(path)``: the report of a fit folder or of a study folder, chosen by its files."""

from __future__ import annotations

from pathlib import Path

__all__ = ["write_report"]


def write_report(path: str | Path, *, progressbar: bool = False) -> Path:
    """Write the self-contained HTML report of a fit folder or a study folder.

    Parameters
    ----------
    path : str or pathlib.Path
        A study folder (with ``study.json``/``manifest.jsonl`` from ``bayesmoe study``), a fit
        folder (with ``trace.nc``, e.g. from ``bayesmoe run``/``bayesmoe fit``), or a
        ``trace.nc`` file.
    progressbar : bool
        Progress bar over the fit pages of a study.

    Returns
    -------
    pathlib.Path
        The written ``report.html``.

    Raises
    ------
    ValueError
        When `path` is none of these.

    Examples
    --------
    Given a fit folder from ``bayesmoe fit`` (not run as a doctest: a fit and the report's
    figures take several seconds):

    >>> from bayesmoe.report import write_report
    >>> write_report("bayesmoe-run")  # doctest: +SKIP
    PosixPath('bayesmoe-run/report.html')
    """
    p = Path(path)
    if p.is_file() and p.suffix == ".nc":
        from bayesmoe.report.fit import write_fit_report

        return write_fit_report(p, p.parent)
    if not p.is_dir():
        raise ValueError(
            f"report path {str(p)!r} does not exist; give a fit folder (with "
            "trace.nc) or a study folder."
        )
    if (p / "study.json").is_file() or (p / "manifest.jsonl").is_file():
        from bayesmoe.report.study import write_study_report

        return write_study_report(p, progressbar=progressbar)
    if (p / "trace.nc").is_file():
        from bayesmoe.report.fit import write_fit_report

        return write_fit_report(p / "trace.nc", p)
    raise ValueError(
        f"{str(p)!r} is neither a fit folder (no trace.nc) nor a study folder "
        "(no study.json); run `bayesmoe fit`/`bayesmoe run` or `bayesmoe study` "
        "first."
    )
