"""The `bayesmoe` command: run the default job, fit a CSV, select K, run a study, report.

Every user error exits with status 2 and one line ``bayesmoe: error: ...`` on stderr (no
traceback), and no partial output: results are written to a temporary folder and moved into
place only when the job has succeeded.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bayesmoe._validation import nonneg_int, positive_int
from bayesmoe.families import FAMILIES, get_family

__all__ = ["main"]

DEFAULT_OUT = "bayesmoe-run"


class UserError(Exception):
    """A problem with the user's input: reported as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, no usage dump
        raise UserError(f"{message} (see `{self.prog} --help`)")


# argparse int types live in bayesmoe._validation (shared with `bayesmoe.study.cli`)
_positive_int = positive_int
_nonneg_int = nonneg_int


#: --family help: the families' names and what each models
_FAMILY_HELP = (
    "expert family: "
    + "; ".join(f"{name} ({get_family(name).description})" for name in FAMILIES)
    + "; or student-t(df=NU) (Student-t experts with NU degrees of freedom, fixed)"
)


def _family_arg(value: str) -> str:
    """--family: a family name (FAMILIES, or student-t(df=NU))."""
    try:
        return get_family(value).name
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err).replace("`family` must", "must")) from None


_OFFSET_HELP = "column of per-row log-exposures (families with a log link, e.g. poisson)"
_TRIALS_HELP = "column of per-row numbers of trials (binomial; default 1: 0/1 responses)"
_GATE_FEATURES_HELP = (
    "comma-separated columns the gate sees (default: the --features); 'none' for constant "
    "mixing weights (a mixture of regressions)"
)


def _add_sampling(p: argparse.ArgumentParser, draws=1000, tune=None, chains=4) -> None:
    p.add_argument("--out", default=DEFAULT_OUT, help=f"output folder (default {DEFAULT_OUT}/)")
    p.add_argument("--seed", type=_nonneg_int, default=1, help="random seed (default 1)")
    p.add_argument("--draws", type=_positive_int, default=draws, help=f"draws per chain ({draws})")
    p.add_argument(
        "--tune",
        type=_nonneg_int,
        default=tune,
        help="tuning steps per chain (default 300 for the jax backend, else 1000)",
    )
    p.add_argument("--chains", type=_positive_int, default=chains, help=f"chains ({chains})")
    p.add_argument(
        "--backend",
        choices=("auto", "jax", "pymc", "nutpie", "numpyro"),
        default="auto",
        help="NUTS implementation (default auto: jax if installed)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _add_formulas(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--formula",
        metavar="'y ~ ...'",
        help="the response and the experts' covariates as a formula (formulaic, R conventions: "
        "C(g), a*b, log(x), offset(log(t))); replaces --target/--features/--offset",
    )
    p.add_argument(
        "--gate-formula",
        metavar="'~ ...'",
        help="the gate's covariates as a formula without response ('~ 1': constant mixing "
        "weights; default: the experts' design); needs --formula",
    )


def _parser() -> _Parser:
    parser = _Parser(prog="bayesmoe", description="Bayesian softmax-gated mixtures of experts.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    run = sub.add_parser("run", help="fit the default job: S-B simulated data, n=1000, K=3")
    _add_sampling(run)
    fit = sub.add_parser("fit", help="fit a mixture of experts to a CSV file")
    fit.add_argument("data", help="CSV file with a header row")
    fit.add_argument("--target", help="name of the response column (or give --formula)")
    _add_formulas(fit)
    fit.add_argument(
        "--features",
        help="comma-separated feature columns (default: all others); 'none' for a "
        "mixture without covariates (the gate is then the mixing weights)",
    )
    fit.add_argument("--gate-features", metavar="COLS", help=_GATE_FEATURES_HELP)
    fit.add_argument("--experts", type=_positive_int, help="number of experts K (fixed-K fits)")
    fit.add_argument(
        "--experts-prior",
        metavar="SPEC",
        help="random K: prior on K, 'poisson:RATE' (K-1 ~ Poisson), 'geometric:P', "
        "'uniform' or 'uniform:KMAX' (K ~ U{1..KMAX}; sets --max-experts); "
        "sampled by reversible jump (needs --max-experts otherwise)",
    )
    fit.add_argument(
        "--priors",
        default="default",
        metavar="SET",
        help="prior set: 'default' or 'richardson-green' (Richardson & Green 1997: "
        "Dirichlet(1) weights, N(midpoint, range^2) means, Gamma(2, beta) "
        "precisions with beta ~ Gamma(0.2, 10/range^2)); see "
        "bayesmoe.models.priors",
    )
    fit.add_argument(
        "--gate-prior",
        metavar="SPEC",
        help="Dirichlet-process gate: 'dp:ALPHA' or 'dp:gamma:A,B' (needs "
        "--max-experts, the truncation)",
    )
    fit.add_argument("--max-experts", type=_positive_int, help="K_max for random K or DP")
    fit.add_argument(
        "--prior-only",
        action="store_true",
        help="random K: sample with the likelihood switched off",
    )
    fit.add_argument("--family", type=_family_arg, default="gaussian", help=_FAMILY_HELP)
    fit.add_argument("--offset", metavar="COL", help=_OFFSET_HELP)
    fit.add_argument("--trials", metavar="COL", help=_TRIALS_HELP)
    fit.add_argument("--gate", choices=("softmax", "tanh", "sigmoid"), default="softmax")
    fit.add_argument(
        "--method",
        choices=("nuts", "mle", "rjmcmc"),
        default=None,
        help="nuts (fixed K, default), mle (maximum likelihood by MM) or rjmcmc "
        "(random K; the default when --experts-prior is given)",
    )
    fit.add_argument(
        "--rj-sampler",
        choices=("auto", "compiled", "step"),
        default="auto",
        help="rjmcmc: the compiled (JAX) sampler or PyMC's step methods (default auto: "
        "compiled for a mixture without features under --priors richardson-green and for "
        "Gaussian and categorical experts with features under the default priors; else step)",
    )
    fit.add_argument(
        "--json", action="store_true", help="print one JSON object (with --method mle)"
    )
    _add_sampling(fit)
    sel = sub.add_parser(
        "select",
        help="compare numbers of experts: AIC/BIC/ICL and DSC (MM), "
        "optionally LOO and MTM (NUTS) and p(K | y) (reversible "
        "jump)",
    )
    sel.add_argument("data", help="CSV file with a header row")
    sel.add_argument("--target", help="name of the response column (or give --formula)")
    _add_formulas(sel)
    sel.add_argument("--features")
    sel.add_argument("--gate-features", metavar="COLS", help=_GATE_FEATURES_HELP)
    sel.add_argument("--max-experts", type=_positive_int, required=True)
    sel.add_argument(
        "--min-experts", type=_positive_int, default=1, help="smallest K in the table (default 1)"
    )
    sel.add_argument("--family", type=_family_arg, default="gaussian", help=_FAMILY_HELP)
    sel.add_argument("--offset", metavar="COL", help=_OFFSET_HELP)
    sel.add_argument("--trials", metavar="COL", help=_TRIALS_HELP)
    sel.add_argument("--gate", choices=("softmax", "tanh", "sigmoid"), default="softmax")
    sel.add_argument("--seed", type=_nonneg_int, default=1)
    sel.add_argument(
        "--nuts",
        action="store_true",
        help="also fit every K by NUTS: LOO (arviz.compare) and the MTM posterior "
        "of K from the max-experts fit",
    )
    sel.add_argument(
        "--rjmcmc",
        action="store_true",
        help="also sample p(K | y) by reversible jump on 1..max-experts",
    )
    sel.add_argument(
        "--experts-prior",
        default="poisson:1.0",
        metavar="SPEC",
        help="prior of K for --rjmcmc (default poisson:1.0)",
    )
    sel.add_argument(
        "--draws", type=_positive_int, default=500, help="draws per chain for --nuts/--rjmcmc"
    )
    sel.add_argument("--tune", type=_nonneg_int, default=500)
    sel.add_argument("--chains", type=_positive_int, default=2)
    sel.add_argument("--cores", type=_positive_int, default=None)
    sel.add_argument("--progress", action="store_true", help="show a progress bar on stderr")
    sel.add_argument("--json", action="store_true")
    from bayesmoe.study.cli import register  # `study` and `report`

    register(sub)
    return parser


# ----- data ---------------------------------------------------------------------------------------
@dataclass
class CsvData:
    """What ``bayesmoe fit``/``select`` read from a CSV file."""

    X: np.ndarray
    y: np.ndarray
    names: list
    offset: np.ndarray | None = None
    gate_X: np.ndarray | None = None  # None: the gate sees the expert features
    gate_names: list | None = None
    trials: np.ndarray | None = None  # per-row numbers of trials (binomial)
    formulas: dict = field(default_factory=dict)  # Design.attrs() of a --formula fit

    def gate_kwargs(self) -> dict:
        """``gate_X`` / ``gate_feature_names`` for the library calls (empty when shared), and
        ``trials`` when a column was given.
        """
        out = {} if self.trials is None else {"trials": self.trials}
        if self.gate_X is None:
            return out
        return {**out, "gate_X": self.gate_X, "gate_feature_names": self.gate_names}


def _columns(df, path: str, spec: str | None, target: str, default: list, what: str) -> list:
    """Column names of a ``--features``/``--gate-features`` value: 'none', a list, or default."""
    if spec is not None and spec.strip().lower() == "none":
        return []
    if not spec:
        return default
    names = [c.strip() for c in spec.split(",") if c.strip()]
    missing = [c for c in names if c not in df.columns]
    if missing:
        raise UserError(f"{what} column(s) {missing} not in {path!r}; columns: {list(df.columns)}")
    if target in names:
        raise UserError(f"the target {target!r} is also listed as a {what}")
    return names


def _matrix(df, names: list, what: str) -> np.ndarray:
    """The columns ``names`` as floats: numeric, finite and not constant, or one-line errors."""
    import pandas as pd

    for c in names:
        if not pd.api.types.is_numeric_dtype(df[c]):
            raise UserError(f"{what} column {c!r} is not numeric (e.g. {df[c].iloc[0]!r})")
    X = df[names].to_numpy(dtype=float)
    bad = ~np.isfinite(X)
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise UserError(
            f"{what} column {names[c]!r} has a missing or infinite value at row {r + 2}"
            " of the file; drop or impute it"
        )
    for j, c in enumerate(names):
        if np.ptp(X[:, j]) == 0:
            raise UserError(f"{what} column {c!r} is constant; remove it")
    return X


def read_csv(
    path: str,
    target: str,
    features: str | None,
    family: str,
    offset: str | None = None,
    gate_features: str | None = None,
    trials: str | None = None,
) -> CsvData:
    """Read the data of a fit from a CSV, with one-line errors for every bad input.

    ``features`` and ``gate_features`` are comma-separated column names or 'none' (no
    covariates); by default the experts take every other column and the gate the experts'.
    ``offset`` names a column of per-row log-exposures (families with a log link); it is not a
    feature unless listed in ``features``; ``trials`` names a column of per-row numbers of
    trials (binomial), never a feature.
    """
    import pandas as pd

    df = _read_frame(path)
    if target not in df.columns:
        raise UserError(f"column {target!r} not in {path!r}; columns: {list(df.columns)}")
    others = [c for c in df.columns if c not in (target, offset, trials)]
    # no feature columns (--features none, or a CSV of the target alone): X has shape (n, 0)
    names = _columns(df, path, features, target, others, "feature")
    X = _matrix(df, names, "feature")
    gate_names = _columns(df, path, gate_features, target, names, "gate feature")
    gate_X = None if gate_names == names else _matrix(df, gate_names, "gate feature")
    y = df[target]
    if y.isna().any():
        raise UserError(
            f"target column {target!r} has a missing value at row "
            f"{int(np.flatnonzero(y.isna())[0]) + 2} of the file"
        )
    fam = get_family(family)
    two_level = "trials" in fam.row_data and y.nunique() == 2  # binomial: 0/1 or two labels
    if not fam.has_classes and not (two_level and not pd.api.types.is_numeric_dtype(y)):
        if not pd.api.types.is_numeric_dtype(y):
            raise UserError(
                f"target {target!r} is not numeric; use --family categorical for labels"
            )
        y = y.to_numpy(dtype=float)
        if not np.all(np.isfinite(y)):
            raise UserError(f"target column {target!r} has an infinite value")
    else:
        y = y.to_numpy()
    off = _read_offset(df, path, offset, fam)
    tri = _read_trials(df, path, trials, fam, y)
    gate_names = None if gate_X is None else gate_names
    return CsvData(X, y, names, off, gate_X, gate_names, trials=tri)


def _read_trials(df, path: str, column: str | None, fam, y):
    """The ``--trials`` column as floats (whole numbers >= 1, at least the target), or None."""
    import pandas as pd

    if column is None:
        return None
    if "trials" not in fam.row_data:
        raise UserError(f"--trials applies to binomial experts; {fam.name} takes none")
    if column not in df.columns:
        raise UserError(f"trials column {column!r} not in {path!r}; columns: {list(df.columns)}")
    t = df[column]
    if not pd.api.types.is_numeric_dtype(t) or t.isna().any():
        raise UserError(f"trials column {column!r} must hold whole numbers >= 1")
    from bayesmoe._validation import check_trials

    try:
        yy = np.asarray(y, dtype=float) if y.dtype.kind in "iuf" else np.zeros(len(t))
        return check_trials(t.to_numpy(dtype=float), yy, len(t), family=fam.name)
    except ValueError as err:
        raise UserError(f"trials column {column!r}: {err}".rstrip(".")) from None


def _read_frame(path: str):
    import pandas as pd

    p = Path(path)
    if not p.is_file():
        raise UserError(f"data file {path!r} does not exist")
    try:
        return pd.read_csv(p)
    except Exception as err:
        raise UserError(f"could not read {path!r} as CSV: {err}".splitlines()[0]) from None


def read_data(args) -> CsvData:
    """The data of ``fit``/``select``: by columns (``--target`` ...) or by ``--formula``."""
    if args.formula is None:
        if args.target is None:
            raise UserError("give --target COLUMN (or --formula 'y ~ ...')")
        if args.gate_formula is not None:
            raise UserError("--gate-formula needs --formula (or use --gate-features)")
        return read_csv(
            args.data,
            args.target,
            args.features,
            args.family,
            args.offset,
            args.gate_features,
            args.trials,
        )
    given = {"--target": args.target, "--features": args.features}
    given.update({"--gate-features": args.gate_features, "--offset": args.offset})
    clash = [k for k, v in given.items() if v is not None]
    if clash:
        raise UserError(
            f"{clash[0]} cannot be combined with --formula (the formulas name the response, "
            "the covariates and offset(...) terms)"
        )
    from bayesmoe.formula import design_matrices

    frame = _read_frame(args.data)
    dm = design_matrices(frame, args.formula, args.gate_formula, family=args.family)
    d = dm.design
    args.target = d.response
    gate_X = None if dm.gate_X is None else dm.gate_X.to_numpy()
    trials = _read_trials(frame, args.data, args.trials, get_family(args.family), np.asarray(dm.y))
    return CsvData(
        dm.X.to_numpy(),
        dm.y,
        d.feature_names,
        dm.offset,
        gate_X,
        d.gate_feature_names,
        trials=trials,
        formulas=d.attrs(),  # formula, gate_formula and the design (formula_design, JSON)
    )


def _read_offset(df, path: str, column: str | None, fam):
    """The ``--offset`` column as floats, or None."""
    import pandas as pd

    if column is None:
        return None
    if not fam.takes_offset:
        raise UserError(f"--offset applies to families with a log link; {fam.name} takes none")
    if column not in df.columns:
        raise UserError(f"offset column {column!r} not in {path!r}; columns: {list(df.columns)}")
    off = df[column]
    if not pd.api.types.is_numeric_dtype(off) or not np.all(np.isfinite(off.to_numpy(dtype=float))):
        raise UserError(
            f"offset column {column!r} must hold finite numbers (log-exposures; exposures > 0)"
        )
    return off.to_numpy(dtype=float)


# ----- output -------------------------------------------------------------------------------------
class _Staging:
    """Write outputs to a temporary folder beside `out`; move them into `out` on success."""

    def __init__(self, out: str):
        self.out = Path(out)

    def __enter__(self) -> Path:
        parent = self.out.resolve().parent
        if not parent.is_dir():
            raise UserError(f"the parent folder of --out {str(self.out)!r} does not exist")
        self.tmp = Path(tempfile.mkdtemp(prefix=".bayesmoe-", dir=parent))
        return self.tmp

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.out.mkdir(exist_ok=True)
            for f in self.tmp.iterdir():
                os.replace(f, self.out / f.name)
        shutil.rmtree(self.tmp, ignore_errors=True)
        return False


def _save_fit(trace, folder: Path) -> object:

    from bayesmoe.diagnostics.summary import summary

    user_units = [v for v in ("beta0", "beta1", "a", "b", "sigma") if v in trace.posterior]
    # the summary leaves out the reference class's pinned zeros (the family says which)
    table = summary(trace, var_names=[*user_units, "loglik"], relabel=False)  # relabelled already
    trace.to_netcdf(folder / "trace.nc", engine="h5netcdf")
    table.to_csv(folder / "summary.csv")
    return table


def _write_report(trace, folder: Path, title: str) -> None:
    from bayesmoe.report import write_fit_report

    write_fit_report(trace, folder, title=title)


def _print_table(table) -> None:
    import pandas as pd

    with pd.option_context(
        "display.max_rows",
        200,
        "display.max_columns",
        20,
        "display.width",
        160,
        "display.float_format",
        "{:.3f}".format,
    ):
        print(table)


# ----- commands -----------------------------------------------------------------------------------
def _cmd_run(args) -> int:
    from bayesmoe.data import simulate
    from bayesmoe.inference import sample

    t0 = time.perf_counter()
    X, y, _ = simulate("S-B", n=1000, random_seed=args.seed)
    with _Staging(args.out) as tmp:
        trace = sample(
            X,
            y,
            n_experts=3,
            draws=args.draws,
            tune=args.tune,
            chains=args.chains,
            backend=args.backend,
            random_seed=args.seed,
            progressbar=not args.quiet,
        )
        trace.attrs["data"] = f"simulate('S-B', n=1000, random_seed={args.seed})"
        table = _save_fit(trace, tmp)
        _write_report(trace, tmp, "bayesmoe run: S-B, n = 1000, K = 3")
    _print_table(table)
    print(
        f"wrote {args.out}/trace.nc, summary.csv and report.html; "
        f"wall time {time.perf_counter() - t0:.1f} s"
    )
    return 0


def _fit_mode(args) -> str:
    """Check the combination of K options; return "nuts", "mle", "rjmcmc" or "dp"."""
    random_k = args.experts_prior is not None or args.method == "rjmcmc"
    if args.experts_prior is not None:
        from bayesmoe.models.random_k import parse_experts_prior

        try:
            kind, value = parse_experts_prior(args.experts_prior)
        except ValueError as err:
            raise UserError(f"--experts-prior: {err}") from None
        if kind == "uniform" and value is not None:
            kmax = int(value)
            if args.max_experts is None:
                args.max_experts = kmax
            elif args.max_experts < kmax:
                raise UserError(
                    f"--experts-prior {args.experts_prior} puts mass up to K = {kmax}"
                    f" but --max-experts is {args.max_experts}; drop --max-experts "
                    f"or set it >= {kmax}"
                )
    from bayesmoe.models.priors import resolve_priors

    try:
        resolve_priors(args.priors)
    except ValueError as err:
        raise UserError(f"--priors: {err}") from None
    if args.gate_prior is not None:
        if random_k or args.method not in (None, "nuts"):
            raise UserError(
                "--gate-prior (a DP gate, sampled by NUTS) cannot be combined with "
                "--experts-prior or --method mle/rjmcmc"
            )
        mode = "dp"
    elif random_k:
        if args.method == "mle":
            raise UserError("--experts-prior (random K) needs --method rjmcmc, not mle")
        mode = "rjmcmc"
    else:
        mode = args.method or "nuts"
    if mode in ("rjmcmc", "dp"):
        if args.max_experts is None:
            raise UserError(
                f"{'--experts-prior' if mode == 'rjmcmc' else '--gate-prior'} needs "
                "--max-experts (the largest number of experts)"
            )
        if args.experts is not None:
            raise UserError(
                "--experts fixes K; with a random K or a DP gate give --max-experts instead"
            )
    elif args.experts is None:
        raise UserError("give --experts K (or --experts-prior with --max-experts for random K)")
    if args.prior_only and mode != "rjmcmc":
        raise UserError("--prior-only applies to random-K fits (--experts-prior) only")
    return mode


def _cmd_fit(args) -> int:
    t0 = time.perf_counter()
    mode = _fit_mode(args)
    data = read_data(args)
    if mode == "mle":
        return _fit_mle(args, data, t0)
    if mode in ("rjmcmc", "dp"):
        return _fit_random_k(args, mode, data, t0)
    from bayesmoe.inference import sample

    with _Staging(args.out) as tmp:
        trace = sample(
            data.X,
            data.y,
            n_experts=args.experts,
            family=args.family,
            gate=args.gate,
            priors=args.priors,
            feature_names=data.names,
            offset=data.offset,
            **data.gate_kwargs(),
            draws=args.draws,
            tune=args.tune,
            chains=args.chains,
            backend=args.backend,
            random_seed=args.seed,
            progressbar=not args.quiet,
        )
        trace.attrs["data"] = str(Path(args.data).resolve())
        trace.attrs["target"] = args.target
        trace.attrs.update(data.formulas)
        table = _save_fit(trace, tmp)
        _write_report(trace, tmp, f"bayesmoe fit: {Path(args.data).name}, K = {args.experts}")
    _print_table(table)
    print(
        f"wrote {args.out}/trace.nc, summary.csv and report.html; "
        f"wall time {time.perf_counter() - t0:.1f} s"
    )
    return 0


def _fit_random_k(args, mode, data: CsvData, t0) -> int:
    import pandas as pd

    X, y, names, offset = data.X, data.y, data.names, data.offset
    common = dict(
        max_experts=args.max_experts,
        family=args.family,
        gate=args.gate,
        priors=args.priors,
        feature_names=names,
        draws=args.draws,
        tune=1000 if args.tune is None else args.tune,
        chains=args.chains,
        random_seed=args.seed,
        progressbar=not args.quiet,
    )
    if offset is not None:
        if mode == "dp":
            raise UserError("--offset is not supported with the Dirichlet-process gate (dp:...)")
        common["offset"] = offset
    if data.trials is not None:
        if mode == "dp":
            raise UserError("--trials is not supported with the Dirichlet-process gate (dp:...)")
        common["trials"] = data.trials
    if data.gate_X is not None:
        if mode == "dp":
            raise UserError(
                "--gate-features is not supported with the Dirichlet-process gate (dp:...)"
            )
        common.update(data.gate_kwargs())
    if mode == "rjmcmc":
        from bayesmoe.inference.rjmcmc import acceptance_summary, k_posterior, sample_random_k

        spec = args.experts_prior or "poisson:1.0"
        trace = sample_random_k(
            X,
            y,
            experts_prior=spec,
            prior_only=args.prior_only,
            init="prior" if args.prior_only else "mm",
            sampler=args.rj_sampler,
            **common,
        )
        pmf = k_posterior(trace)
        extra = acceptance_summary(trace).to_dataframe()
        label = "p(K | y)" if not args.prior_only else "p(K) (prior only)"
    else:
        from bayesmoe.inference.dp import sample_dp
        from bayesmoe.inference.rjmcmc import parse_gate_prior

        trace = sample_dp(X, y, **parse_gate_prior(args.gate_prior), **common)
        occ = trace.posterior["n_occupied"].values.ravel()
        counts = np.bincount(occ, minlength=args.max_experts + 1)[1:]
        pmf = pd.Series(
            counts / counts.sum(), index=pd.RangeIndex(1, args.max_experts + 1, name="n_experts")
        )
        extra = None
        label = "occupied experts (not a consistent estimate of K: Miller & Harrison)"
    table = (pmf.to_series() if hasattr(pmf, "to_series") else pmf).rename("probability")
    table = table.to_frame()
    if hasattr(pmf, "coords") and "mcse" in pmf.coords:  # p(K | y) with its Monte Carlo error
        table["mcse"] = pmf["mcse"].values
    with _Staging(args.out) as tmp:
        trace.attrs["data"] = str(Path(args.data).resolve())
        trace.attrs["target"] = args.target
        trace.attrs.update(data.formulas)
        trace.to_netcdf(tmp / "trace.nc", engine="h5netcdf")
        table.to_csv(tmp / "summary.csv")
        if extra is not None:
            extra.to_csv(tmp / "acceptance.csv")
        _write_report(trace, tmp, f"bayesmoe fit ({mode}): {Path(args.data).name}")
    print(label)
    _print_table(table)
    if extra is not None:
        _print_table(extra)
    print(
        f"wrote {args.out}/trace.nc, summary.csv and report.html; "
        f"wall time {time.perf_counter() - t0:.1f} s"
    )
    return 0


def _fit_mle(args, data: CsvData, t0) -> int:
    from bayesmoe._validation import check_y
    from bayesmoe.inference.mle.mm import fit_mle

    y, classes = check_y(data.y, args.family, data.X.shape[0])
    res = fit_mle(
        data.X,
        y,
        args.experts,
        family=args.family,
        gate=args.gate,  # fit_mle takes the gate names of the samplers
        random_seed=args.seed,
        offset=data.offset,
        **data.gate_kwargs(),
    )
    formulas = {k: v for k, v in data.formulas.items() if k.endswith("formula")}
    out = {"features": data.names, "target": args.target, **formulas, **res.to_dict()}
    if data.gate_names is not None:
        out["gate_features"] = data.gate_names
    if classes is not None:
        out["classes"] = [c if isinstance(c, (int, float, str)) else str(c) for c in classes]
    with _Staging(args.out) as tmp:  # written before anything is printed: no partial output
        (tmp / "mle.json").write_text(json.dumps(out, indent=1))
    if args.json:
        print(json.dumps(out))
    else:
        print(res)
        print(f"wrote {args.out}/mle.json; wall time {time.perf_counter() - t0:.1f} s")
    return 0


def _cmd_select(args) -> int:
    from bayesmoe._validation import check_y
    from bayesmoe.selection.compare import compare_experts

    if args.min_experts > args.max_experts:
        raise UserError(
            f"--min-experts {args.min_experts} is above --max-experts {args.max_experts}"
        )
    data = read_data(args)
    X, offset = data.X, data.offset
    y, _ = check_y(data.y, args.family, X.shape[0])
    mcmc = {"draws": args.draws, "tune": args.tune, "chains": args.chains, "cores": args.cores}
    table = compare_experts(
        X,
        y,
        ks=range(args.min_experts, args.max_experts + 1),
        family=args.family,
        gate=args.gate,
        random_seed=args.seed,
        nuts=args.nuts,
        nuts_kwargs=mcmc,
        rjmcmc=args.rjmcmc,
        rjmcmc_kwargs={**mcmc, "experts_prior": args.experts_prior},
        progressbar=args.progress,
        offset=offset,
        **({"gate_X": data.gate_X} if data.gate_X is not None else {}),
        **({"trials": data.trials} if data.trials is not None else {}),
    )
    table.attrs.update({k: v for k, v in data.formulas.items() if k.endswith("formula")})
    if args.json:
        print(json.dumps(_jsonable_selection(table)))
    else:
        _print_table(table.dropna(axis="columns", how="all"))
        attrs = dict(getattr(table, "attrs", {}))
        if "recommendation" in attrs:  # the answer first, then the details
            print(f"recommendation: {attrs.pop('recommendation')}")
        for k, v in attrs.items():
            print(f"{k}: {v}")
    return 0


def _jsonable_selection(table) -> dict:
    records = json.loads(table.reset_index().to_json(orient="records"))  # keep K per row
    return {
        "table": records,
        **{k: (v.item() if hasattr(v, "item") else v) for k, v in table.attrs.items()},
    }


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `bayesmoe` console script."""
    try:
        args = _parser().parse_args(argv)
        command = (
            getattr(args, "handler", None)
            or {"run": _cmd_run, "fit": _cmd_fit, "select": _cmd_select}[args.command]
        )
        return command(args)
    except UserError as err:
        print(f"bayesmoe: error: {err}", file=sys.stderr)
        return 2
    except (ValueError, TypeError) as err:  # validation errors raised by the library
        if os.environ.get("BAYESMOE_DEBUG"):
            raise
        print(f"bayesmoe: error: {str(err).splitlines()[0]}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("bayesmoe: interrupted; nothing was written", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
