"""Voronoi cells and Voronoi losses between mixing measures (docs/math.md §4).

The losses compare a fitted mixing measure G (a point estimate, or every posterior draw at once)
with a reference G* (usually the truth). Atoms of G are grouped into the Voronoi cells of the atoms
of G*; the loss adds a mass term per cell and parameter errors weighted by the fitted masses.

Gating canonicalisation [choice]
--------------------------------
The gate ``softmax((beta1 . M(x) + beta0) / tau)`` is unchanged by adding one ``(t0, t1)`` to every
expert's ``(beta0, beta1)``. Both measures are put in the same canonical form before any distance
is computed:

- masses are the softmax-normalised weights ``p_k = softmax(beta0 / tau)_k`` (``sum_k p_k = 1``;
  inactive experts get ``p_k = 0``), as in merge-truncate-merge (docs/math.md §6);
- slopes are centred by their **mass-weighted** mean, ``beta1_k / tau - sum_j p_j beta1_j / tau``.

Mass-weighted centring, unlike plain sum-to-zero centring over experts, is stable under splitting:
an atom split into copies whose masses add up to the original leaves the weighted mean unchanged,
so an over-fitted measure that reproduces the truth exactly has loss 0. (With plain centring the
truth ``beta1 = (1, -1)`` and its split ``(1, 1, -1)`` would be centred differently.)
Multinomial experts are canonicalised the same way within each expert: the reference (last) class
is subtracted from every class's ``a`` and ``b`` and then dropped.

Atoms used for the cells are ``theta_k = (beta1_k, a_k, b_k, sigma2_k)`` (multinomial and Poisson:
no sigma2; the expert blocks are the family's ``Family.atom_blocks``) in these canonical
coordinates, with the Euclidean norm; ties go to the lowest reference index.

Centred inputs
--------------
The masses ``softmax(beta0)`` are the gate weights at gate input 0, and ``b`` is the expert mean
at x = 0: the exp(beta0)-weighted losses of docs/math.md §4 assume centred inputs. With inputs far
from 0 (S-A: x in [0, 1], a gate slope of 25) the masses read at x = 0 say little about the fit —
S-A's true masses are (3e-4, 0.9997) at x = 0 and (0.989, 0.011) at x = 0.5. Pass the inputs ``X``
to re-express both measures, exactly, at centred inputs (experts: x - mean(X); gate:
M(x) - mean(M(X))) before the loss is computed. The rates of a loss do not depend on this choice
(it changes constants only), its values do.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import xarray as xr
from scipy.special import softmax

from bayesmoe.diagnostics.mixing import mixing_measure
from bayesmoe.families import get_family
from bayesmoe.gates import canonical_name, stored_gate
from bayesmoe.measure import measure_arrays, measure_family

__all__ = ["R_BAR", "voronoi_cells", "voronoi_loss"]

#: Exponent r̄(m) of an over-fitted Gaussian cell of size m (docs/math.md §4.3); unknown for m >= 4.
R_BAR: dict[int, float] = {2: 4.0, 3: 6.0}


# --------------------------------------------------------------------------------------------
# Input handling shared by the diagnostics of this package
# --------------------------------------------------------------------------------------------
def as_measure(source, name: str = "measure") -> xr.Dataset:
    """Coerce a DataTree / Dataset / fit result to a mixing measure, with a clear error."""
    if not (isinstance(source, (xr.Dataset, xr.DataTree)) or hasattr(source, "measure_")):
        raise TypeError(
            f"`{name}` must be a mixing-measure xarray.Dataset, a posterior xarray.DataTree or a "
            f"fit result with a `measure_` attribute; got {type(source).__name__}. Build one with "
            "bayesmoe.measure.make_measure or bayesmoe.diagnostics.mixing_measure."
        )
    try:
        ds = mixing_measure(source)
    except (ValueError, TypeError) as err:
        raise ValueError(f"`{name}` is not a mixing measure: {err}") from None
    missing = [v for v in ("beta0", "beta1", "a", "b") if v not in ds]
    if missing:
        raise ValueError(
            f"`{name}` is missing variables {missing}; a mixing measure needs beta0, beta1, a, b "
            "(and sigma2 for Gaussian experts)."
        )
    for v in ("beta0", "beta1", *get_family(measure_family(ds)).canonical_dims):
        if v in ds and not np.all(np.isfinite(ds[v].values)):
            raise ValueError(
                f"`{name}.{v}` contains NaN or inf; drop or repair those draws first "
                f"(e.g. `{name}.where(np.isfinite({name}.{v}).all('expert'), drop=True)`)."
            )
    return ds


def sample_dims_of(ds: xr.Dataset) -> list[str]:
    """The sample dims of a measure: every dim of ``beta0`` except ``expert``, in order."""
    return [d for d in ds["beta0"].dims if d != "expert"]


def check_comparable(G: xr.Dataset, ref: xr.Dataset, names=("measure", "truth")) -> None:
    """Raise a clear error unless two measures have the same family, features, classes and gate."""
    fam, fam_ref = measure_family(G), measure_family(ref)
    if fam != fam_ref:
        raise ValueError(
            f"`{names[0]}` has {fam} experts but `{names[1]}` has {fam_ref} experts; compare "
            "measures of the same family."
        )
    for dim, what in (("feature", "features"), ("gate_feature", "gate features")):
        if G.sizes.get(dim, 0) != ref.sizes.get(dim, 0):
            raise ValueError(
                f"`{names[0]}` has {G.sizes.get(dim, 0)} {what} but `{names[1]}` has "
                f"{ref.sizes.get(dim, 0)}; both must be measures on the same inputs."
            )
    if G.sizes.get("class") != ref.sizes.get("class"):
        raise ValueError(
            f"`{names[0]}` has {G.sizes['class']} classes but `{names[1]}` has "
            f"{ref.sizes['class']}; both must model the same response."
        )
    g1, g2 = (canonical_name(m.attrs.get("gate", "softmax")) for m in (G, ref))
    if g1 != g2:
        raise ValueError(
            f"`{names[0]}` uses gate transform {g1!r} but `{names[1]}` uses {g2!r}; gate "
            "parameters are only comparable on the same gate input."
        )


def canonical_atoms(ds: xr.Dataset, sample_dims: Sequence[str] | None = None) -> dict:
    """Canonical atoms of a measure as numpy arrays with one flattened sample axis.

    Returns a dict with ``p`` (S, K) masses, ``active`` (S, K), blocks ``beta1`` (S, K, d),
    ``a`` (S, K, ·), ``b`` (S, K, ·), ``sigma2`` (S, K, 1) (Gaussian only), ``theta`` (S, K, D)
    (all blocks concatenated) and ``sample_shape``. See the module docstring for the gauge.
    """
    if sample_dims is None:
        sample_dims = sample_dims_of(ds)
    arr = measure_arrays(ds, sample_dims)
    shape = arr["sample_shape"]
    S = int(np.prod(shape)) if shape else 1
    K = ds.sizes["expert"]
    tau = float(ds.attrs.get("temperature", 1.0))
    if not tau > 0:
        raise ValueError(f"The measure's temperature must be > 0; got {tau}.")
    active = arr.get("active")
    active = np.ones((S, K), bool) if active is None else active.reshape(S, K)
    eta0 = np.where(active, arr["beta0"].reshape(S, K) / tau, -np.inf)
    if np.any(~active.any(axis=1)):
        raise ValueError("A draw of the measure has no active expert; every draw needs one.")
    p = softmax(eta0, axis=1)
    beta1 = np.swapaxes(arr["beta1"].reshape(S, -1, K), 1, 2) / tau  # (S, K, d)
    beta1 = beta1 - np.einsum("sk,skd->sd", p, beta1)[:, None, :]
    out = {"p": p, "active": active, "beta1": beta1, "sample_shape": shape}
    fam = get_family(arr["family"])
    out.update(fam.atom_blocks({k: arr[k] for k in fam.canonical_dims}, S, K))
    out["blocks"] = ("beta1", *fam.canonical_dims)
    out["theta"] = np.concatenate([out[k] for k in out["blocks"]], axis=-1)
    return out


def wrap(values, ds: xr.Dataset, sample_dims, extra_dims=(), extra_coords=None, name=None):
    """Label an array whose leading axis is the flattened sample axis of ``ds``."""
    sample_dims = list(sample_dims)
    shape = tuple(ds.sizes[d] for d in sample_dims)
    values = np.asarray(values).reshape(shape + np.shape(values)[1:])
    coords = {d: ds[d].values for d in sample_dims if d in ds.coords}
    coords.update(extra_coords or {})
    return xr.DataArray(values, dims=(*sample_dims, *extra_dims), coords=coords, name=name)


# --------------------------------------------------------------------------------------------
# numpy core
# --------------------------------------------------------------------------------------------
def assign_cells(theta: np.ndarray, theta_star: np.ndarray, active: np.ndarray) -> np.ndarray:
    """Voronoi cell of each fitted atom: index of the nearest reference atom, -1 if inactive.

    ``theta`` (S, K, D), ``theta_star`` (K*, D), ``active`` (S, K). Ties go to the lowest index.
    """
    d2 = ((theta[:, :, None, :] - theta_star[None, None, :, :]) ** 2).sum(-1)
    return np.where(active, np.argmin(d2, axis=-1), -1)


def _cell_errors(at: dict, star: dict) -> dict:
    """Per-atom block errors to the assigned reference atom, cell sizes and masses."""
    cell = assign_cells(at["theta"], star["theta"][0], at["active"])
    K_star = star["p"].shape[1]
    safe = np.where(cell >= 0, cell, 0)
    errs = {}
    for blk in at["blocks"]:
        diff = at[blk] - star[blk][0][safe]
        errs[blk] = np.where(cell >= 0, np.linalg.norm(diff, axis=-1), np.nan)
    onehot = cell[:, :, None] == np.arange(K_star)[None, None, :]  # (S, K, K*)
    size = onehot.sum(axis=1)
    mass = np.einsum("sk,skj->sj", at["p"], onehot)
    return {"cell": cell, "errors": errs, "size": size, "mass": mass, "onehot": onehot}


def _r_of_m(size_max: int, r_bar) -> np.ndarray:
    """Table r̄(m) for m = 0..size_max (NaN where unknown)."""
    table = np.full(size_max + 1, np.nan)
    for m in range(2, size_max + 1):
        if callable(r_bar):
            table[m] = float(r_bar(m))
        elif r_bar is not None and m in r_bar:
            table[m] = float(r_bar[m])
        elif m in R_BAR:
            table[m] = R_BAR[m]
    return table


def voronoi_loss_arrays(at: dict, star: dict, kind: str, gaussian: bool, r_bar=None) -> np.ndarray:
    """D1 (kind="exact") or D2 (kind="overfitted") per draw from canonical atoms; shape (S,)."""
    ce = _cell_errors(at, star)
    e, p = ce["errors"], at["p"]
    loss = np.abs(ce["mass"] - star["p"]).sum(axis=1)
    lin = sum(np.nan_to_num(e[blk]) for blk in e)
    if kind == "exact":
        return loss + (p * lin).sum(axis=1)
    safe = np.where(ce["cell"] >= 0, ce["cell"], 0)
    m = np.where(ce["cell"] >= 0, np.take_along_axis(ce["size"], safe, axis=1), 0)
    if gaussian:
        r_tab = _r_of_m(int(m.max()), r_bar)
        r = r_tab[m]
        unknown = (m >= 2) & ~np.isfinite(r)
        if np.any(unknown):
            sizes = sorted(set(m[unknown].tolist()))
            raise ValueError(
                f"The over-fitted Voronoi loss needs r̄(m) for cell sizes {sizes}, which "
                "docs/math.md §4.3 leaves unknown for m >= 4 (known: r̄(2)=4, r̄(3)=6). "
                "Pass `r_bar`, a mapping {m: r̄(m)} or a callable m -> r̄(m), e.g. r_bar={4: 8.0}."
            )
        r = np.where(m >= 2, r, 1.0)
        top = np.sqrt(np.nan_to_num(e["beta1"]) ** 2 + np.nan_to_num(e["b"]) ** 2) ** r
        bot = np.sqrt(np.nan_to_num(e["a"]) ** 2 + np.nan_to_num(e["sigma2"]) ** 2) ** (r / 2)
        multi = top + bot
    else:
        multi = sum(np.nan_to_num(e[blk]) ** 2 for blk in e)
    atom = np.where(m >= 2, multi, lin)
    return loss + (p * np.where(ce["cell"] >= 0, atom, 0.0)).sum(axis=1)


# --------------------------------------------------------------------------------------------
# public functions
# --------------------------------------------------------------------------------------------
def centre_measures(X, *measures):
    """Re-express measures exactly at centred inputs: experts see x - mean(X), the gate
    M(x) - mean(M(X)) (``beta0`` absorbs ``beta1 . c_z``, ``b`` absorbs ``a . c_x``).
    """
    from bayesmoe.measure import gate_covariates, gate_input, upgrade_measure
    from bayesmoe.scaling import Standardizer

    measures = tuple(upgrade_measure(G) for G in measures)
    G0 = measures[0]
    d = G0.sizes["feature"]
    X = np.asarray(X, dtype=float)
    if X.ndim != 2 or X.shape[1] != d or X.shape[0] < 1 or not np.all(np.isfinite(X)):
        raise ValueError(
            f"`X` must be a finite array of inputs of shape (n, {d}) to centre the measures on; "
            f"got shape {X.shape}. Pass the inputs the model was fitted on, or omit `X`."
        )
    gate = stored_gate(
        G0.attrs.get("gate"),
        what="`X` centring needs a named gate transform; this measure",
        fix="centre the inputs yourself before fitting, or omit `X`",
    )
    Z = gate_covariates(G0, X)  # a gate of its own: its centre is that of M(z), not of M(x)
    cx, cz = X.mean(0), gate_input(Z, gate).mean(0)
    st = Standardizer(cx, np.ones(d), cz, np.ones(Z.shape[1]), 0.0, 1.0, gate)
    return tuple(st.to_standard(G) for G in measures)


def _prepare(measure, truth, X=None):
    G = as_measure(measure, "measure")
    T = as_measure(truth, "truth")
    if sample_dims_of(T):
        raise ValueError(
            f"`truth` must be a single mixing measure without sample dims; got dims "
            f"{sample_dims_of(T)}. Select one draw first, e.g. `truth.isel(chain=0, draw=0)`."
        )
    check_comparable(G, T)
    if X is not None:
        G, T = centre_measures(X, G, T)
    sd = sample_dims_of(G)
    return G, T, sd, canonical_atoms(G, sd), canonical_atoms(T, [])


def voronoi_cells(measure, truth, X=None) -> xr.Dataset:
    """Voronoi cells of the atoms of a measure around the atoms of a reference, with errors.

    Parameters
    ----------
    measure : xarray.Dataset or xarray.DataTree
        Mixing measure, with or without sample dims (chain, draw), or a posterior trace.
    truth : xarray.Dataset
        Reference mixing measure without sample dims (e.g. the simulator's truth).
    X : array_like, shape (n, d), optional
        Inputs: when given, both measures are first re-expressed at centred inputs (see the
        module docstring); recommended unless the inputs are centred already.

    Returns
    -------
    xarray.Dataset
        Per fitted atom (dim ``expert``): ``assignment`` (index of its cell, -1 if inactive),
        ``mass`` (canonical p_k) and the block errors ``error_beta1``, ``error_a``, ``error_b``,
        ``error_sigma2`` (Euclidean norms to the cell's reference atom, canonical coordinates).
        Per cell (dim ``cell``, one per reference atom): ``cell_size``, ``cell_mass``,
        ``true_mass``, ``mass_error`` (cell_mass - true_mass) and ``cell_error_<block>``, the
        mass-weighted mean block error within the cell (NaN for an empty cell). Sample dims lead.

    Examples
    --------
    >>> from bayesmoe.data import simulate
    >>> from bayesmoe.diagnostics.voronoi import voronoi_cells
    >>> _, _, truth = simulate("S-B", n=10, random_seed=0)
    >>> cells = voronoi_cells(truth, truth)
    >>> cells.cell_size.values.tolist(), float(abs(cells.mass_error).max())
    ([1, 1, 1], 0.0)
    """
    G, T, sd, at, star = _prepare(measure, truth, X)
    ce = _cell_errors(at, star)
    cell_coords = {"cell": T["expert"].values}
    exp_coords = {"expert": G["expert"].values}
    out = {
        "assignment": wrap(ce["cell"], G, sd, ("expert",), exp_coords),
        "mass": wrap(at["p"], G, sd, ("expert",), exp_coords),
        "cell_size": wrap(ce["size"], G, sd, ("cell",), cell_coords),
        "cell_mass": wrap(ce["mass"], G, sd, ("cell",), cell_coords),
        "true_mass": xr.DataArray(star["p"][0], dims=("cell",), coords=cell_coords),
        "mass_error": wrap(ce["mass"] - star["p"], G, sd, ("cell",), cell_coords),
    }
    with np.errstate(invalid="ignore", divide="ignore"):
        for blk, err in ce["errors"].items():
            out[f"error_{blk}"] = wrap(err, G, sd, ("expert",), exp_coords)
            num = np.einsum("sk,skj->sj", at["p"] * np.nan_to_num(err), ce["onehot"])
            cell_err = np.where(ce["size"] > 0, num / ce["mass"], np.nan)
            out[f"cell_error_{blk}"] = wrap(cell_err, G, sd, ("cell",), cell_coords)
    ds = xr.Dataset(out)
    ds.attrs = {
        "gauge": "p = softmax(beta0/tau); beta1/tau centred by its p-weighted mean",
        "family": measure_family(G),
    }
    return ds


def voronoi_loss(
    measure,
    truth,
    kind: str = "exact",
    r_bar: Mapping[int, float] | Callable[[int], float] | None = None,
    X=None,
) -> xr.DataArray:
    """Voronoi loss D1 (exact-fitted) or D2 (over-fitted) of a measure to a reference.

    Following docs/math.md §4, with masses ``p`` and slopes canonicalised as in the module
    docstring::

        D1 = sum_j |sum_{i in A_j} p_i - p*_j|
             + sum_j sum_{i in A_j} p_i (|Δbeta1| + |Δa| + |Δb| + |Δsigma2|)

    D2 has the same mass term; cells with one atom contribute as in D1; a Gaussian cell with
    ``m > 1`` atoms contributes ``p_i (|(Δbeta1, Δb)|^r̄(m) + |(Δa, Δsigma2)|^(r̄(m)/2))`` per atom
    (r̄(2) = 4, r̄(3) = 6) and a multinomial one ``p_i (|Δbeta1|² + |Δa|² + |Δb|²)``. Empty cells
    contribute their reference mass. The loss is invariant to permuting experts and to the gating
    translation, so draws need no relabelling.

    Parameters
    ----------
    measure : xarray.Dataset or xarray.DataTree
        Mixing measure with or without sample dims, or a posterior trace.
    truth : xarray.Dataset
        Reference measure without sample dims.
    kind : {"exact", "overfitted"}
        D1 or D2.
    r_bar : mapping or callable, optional
        r̄(m) for Gaussian over-fitted cells of size m >= 4 (unknown in theory; an error is
        raised if such a cell occurs and none is given). Entries override the defaults 4, 6.
    X : array_like, shape (n, d), optional
        Inputs: when given, both measures are first re-expressed at centred inputs (the
        exp(beta0) weights of docs/math.md §4 assume centred inputs; see the module docstring).
        Recommended unless the inputs are centred already.

    Returns
    -------
    xarray.DataArray
        Named "loss", over the sample dims of `measure` (a scalar without them).

    Examples
    --------
    >>> from bayesmoe.measure import make_measure
    >>> from bayesmoe.diagnostics.voronoi import voronoi_loss
    >>> truth = make_measure([0.0, 0.0], [[1.0, -1.0]], [[1.0, 2.0]], [0.0, 1.0], [1.0, 1.0])
    >>> fit = make_measure([0.0, 0.0], [[1.0, -1.0]], [[1.1, 2.0]], [0.0, 1.0], [1.0, 1.0])
    >>> round(float(voronoi_loss(fit, truth)), 6)  # 0.5 * |Δa| = 0.05
    0.05
    """
    if kind not in ("exact", "overfitted"):
        raise ValueError(f"`kind` must be 'exact' or 'overfitted'; got {kind!r}.")
    if r_bar is not None and not (callable(r_bar) or isinstance(r_bar, Mapping)):
        raise TypeError(
            f"`r_bar` must be a mapping {{m: r̄(m)}} or a callable m -> r̄(m); got "
            f"{type(r_bar).__name__}. For example r_bar={{4: 8.0}}."
        )
    G, _T, sd, at, star = _prepare(measure, truth, X)
    gaussian = get_family(measure_family(G)).voronoi_rbar
    if r_bar is not None and not gaussian:
        raise ValueError(
            "`r_bar` applies to Gaussian experts only; multinomial (and Poisson) over-fitted "
            "cells use squared norms for every cell size (docs/math.md §4.3). Drop `r_bar`."
        )
    values = voronoi_loss_arrays(at, star, kind, gaussian, r_bar)
    out = wrap(values, G, sd, name="loss")
    out.attrs = {"kind": kind, "long_name": "D1" if kind == "exact" else "D2"}
    return out
