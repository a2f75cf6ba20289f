"""The `bayesmoe study` and `bayesmoe report` subcommands.

:func:`register` adds both to the subparsers object of the ``bayesmoe`` command; each subparser
gets its handler as the default ``handler`` (also listed in :data:`COMMANDS`). Handlers return the
exit status; user errors are raised as one-line ``ValueError`` for the main entry point to print.

This module also runs standalone (``python -m bayesmoe.study.cli study SPEC --out DIR``).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from bayesmoe._validation import positive_int as _positive_int

__all__ = ["COMMANDS", "cmd_report", "cmd_study", "main", "register"]


def register(subparsers) -> None:
    """Add the ``study`` and ``report`` subcommands to an argparse subparsers object.

    Examples
    --------
    >>> import argparse
    >>> from bayesmoe.study.cli import register
    >>> parser = argparse.ArgumentParser(prog="bayesmoe")
    >>> register(parser.add_subparsers(dest="command", required=True))
    >>> args = parser.parse_args(["study", "spec.toml", "--out", "res", "--workers", "2"])
    >>> args.handler.__name__, args.workers, args.scheduler
    ('cmd_study', 2, None)
    """
    st = subparsers.add_parser(
        "study",
        help="run a grid of fits (a TOML spec) on dask.distributed; resumable",
        description="Run the tasks of a study spec on a dask LocalCluster (or an existing "
        "scheduler). Rerunning the same command resumes: finished tasks are skipped.",
    )
    st.add_argument("spec", help="study spec (TOML), see examples/contraction_study.toml")
    st.add_argument("--out", required=True, help="study folder (created; reused to resume)")
    where = st.add_mutually_exclusive_group()
    where.add_argument(
        "--workers",
        type=_positive_int,
        default=None,
        help="process workers of the local cluster (default: CPU count)",
    )
    where.add_argument(
        "--scheduler",
        default=None,
        help="address of an existing dask scheduler, e.g. tcp://host:8786 "
        "(its workers must see --out)",
    )
    st.add_argument("--quiet", action="store_true", help="no progress bar")
    st.set_defaults(handler=cmd_study)
    rp = subparsers.add_parser(
        "report",
        help="write a self-contained HTML report of a fit or study folder",
        description="Write DIR/report.html: ArviZ plots and diagnostics of a fit folder "
        "(trace.nc), or the contraction/selection summary of a study folder with one "
        "page per fit.",
    )
    rp.add_argument("path", help="a fit folder (with trace.nc) or a study folder")
    rp.add_argument("--quiet", action="store_true", help="no progress bar")
    rp.set_defaults(handler=cmd_report)


def cmd_study(args) -> int:
    """Handler of ``bayesmoe study``."""
    from bayesmoe.study.runner import run_study
    from bayesmoe.study.spec import load_spec
    from bayesmoe.study.store import StudyStore

    t0 = time.perf_counter()
    spec = load_spec(args.spec)
    try:
        table = run_study(
            spec,
            args.out,
            workers=args.workers,
            scheduler=args.scheduler,
            progressbar=not args.quiet,
        )
    except KeyboardInterrupt:
        n = len(StudyStore(args.out, create=False).finished_ids()) if Path(args.out).is_dir() else 0
        print(
            f"bayesmoe: interrupted; {n} finished task(s) are kept in {args.out}/; rerun the "
            "same command to resume",
            file=sys.stderr,
        )
        return 130
    counts = table["status"].value_counts().to_dict()
    print(
        ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))
        + f"; wrote {args.out}/results.csv and {args.out}/results.nc; wall time "
        f"{time.perf_counter() - t0:.1f} s. `bayesmoe report {args.out}` writes the report."
    )
    if counts.get("error"):
        for _, row in table[table["status"] == "error"].iterrows():
            print(f"  {row['task']}: {row.get('error')}", file=sys.stderr)
        return 1
    return 0


def cmd_report(args) -> int:
    """Handler of ``bayesmoe report``."""
    from bayesmoe.report import write_report

    t0 = time.perf_counter()
    path = write_report(args.path, progressbar=not args.quiet)
    print(f"wrote {path}; wall time {time.perf_counter() - t0:.1f} s")
    return 0


#: Subcommand name -> handler, for a dispatch table.
COMMANDS = {"study": cmd_study, "report": cmd_report}


def main(argv: list[str] | None = None) -> int:
    """Standalone entry point: ``python -m bayesmoe.study.cli {study,report} ...``."""
    parser = argparse.ArgumentParser(prog="bayesmoe")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except (ValueError, TypeError) as err:
        print(f"bayesmoe: error: {str(err).splitlines()[0]}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
