"""`MoE`: the notebook front door (build, fit, predict) for a fixed number of experts."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import xarray as xr

from bayesmoe import prediction as _pred
from bayesmoe._validation import check_family, check_int, family_keyword, keywords_checked
from bayesmoe.gates import resolve_gate
from bayesmoe.inference.nuts.sampling import (
    BACKENDS,
    INITS,
    _check_sample_kwargs,
    sample,
)
from bayesmoe.models.builder import IDENTIFIABILITY, build_model
from bayesmoe.models.priors import resolve_priors

__all__ = ["MoE"]


def _names_and_array(X):
    """Feature names from a DataFrame's columns (else None) and the values."""
    cols = getattr(X, "columns", None)
    if cols is not None:
        return [str(c) for c in cols], X.to_numpy()
    return None, X


class MoE:
    """Bayesian softmax-gated mixture of experts with a fixed number of experts.

    The constructor only stores options; :meth:`fit` validates them, builds the PyMC model on
    standardised data, starts NUTS from the MM maximum-likelihood fit and returns a relabelled
    :class:`xarray.DataTree` whose posterior holds the mixing measure in the user's units.

    Parameters
    ----------
    n_experts : int
        Number of experts K >= 1.
    family : {"gaussian", "categorical", "poisson", "negbinomial", "student-t"}
        The expert family (:data:`bayesmoe.families.FAMILIES`): linear-Gaussian regression,
        multinomial-logistic classification, log-link Poisson or negative binomial regression
        (counts; pass the log-exposures as ``fit(..., offset=...)``), or Student-t regression
        (heavy tails; ``"student-t(df=NU)"`` fixes the degrees of freedom at NU).
    experts : str, optional
        Deprecated alias of ``family`` (kept one release; a ``FutureWarning`` says so).
    gate : {"softmax", "tanh", "sigmoid"} or callable
        Standard softmax gate, or a modified softmax gate on M(x) (experts still see raw x).
    temperature : float
        Gate temperature.
    identifiability : {"zerosum", "reference"}
        How the gate's translation invariance is removed.
    ordered : bool
        Smooth ordering constraint on the expert intercepts.
    priors : str or dict, optional
        A prior set by name (``"default"``, ``"richardson-green"``) or overrides of the prior
        scales, see :mod:`bayesmoe.models.priors`. ``X`` may have zero columns (a mixture
        without covariates).

    Examples
    --------
    >>> import bayesmoe as bm
    >>> X, y, truth = bm.data.simulate("S-B", n=300, random_seed=1)
    >>> model = bm.MoE(n_experts=3)
    >>> trace = model.fit(X, y, draws=20, tune=20, chains=1, random_seed=1,
    ...                   progressbar=False)  # tiny run for the example
    >>> model.predict(X[:5])["mean"].shape
    (5,)
    """

    @keywords_checked
    def __init__(
        self,
        n_experts: int = 2,
        *,
        family: str = "gaussian",
        gate: str | Callable = "softmax",
        temperature: float = 1.0,
        identifiability: str = "zerosum",
        ordered: bool = False,
        priors: str | dict | None = None,
        experts: str | None = None,
    ):
        self.n_experts = n_experts
        self.family = family_keyword(family, experts, "MoE")
        self.gate = gate
        self.temperature = temperature
        self.identifiability = identifiability
        self.ordered = ordered
        self.priors = priors

    @staticmethod
    def _options_names() -> tuple[str, ...]:
        return (
            "n_experts",
            "family",
            "gate",
            "temperature",
            "identifiability",
            "ordered",
            "priors",
        )

    def _options(self) -> dict:
        check_int(self.n_experts, "n_experts")
        check_family(self.family)
        resolve_gate(self.gate)
        resolve_priors(self.priors)
        if self.identifiability not in IDENTIFIABILITY:
            raise ValueError(
                f"`identifiability` must be one of {IDENTIFIABILITY}; got {self.identifiability!r}."
            )
        return {
            "n_experts": self.n_experts,
            "family": self.family,
            "gate": self.gate,
            "temperature": self.temperature,
            "identifiability": self.identifiability,
            "ordered": self.ordered,
            "priors": self.priors,
        }

    def build_model(self, X, y, *, feature_names=None):
        """The PyMC model (and its :class:`~bayesmoe.models.ModelSpec`) for data (X, y)."""
        names, X = _names_and_array(X)
        return build_model(
            X, np.asarray(y), feature_names=feature_names or names, **self._options()
        )

    def fit(
        self,
        X=None,
        y=None,
        *,
        data=None,
        formula: str | None = None,
        gate_formula: str | None = None,
        draws: int = 1000,
        tune: int | None = None,
        chains: int = 4,
        backend: str = "auto",
        init="mm",
        random_seed: int | None = None,
        progressbar: bool = True,
        feature_names=None,
        offset=None,
        gate_X=None,
        trials=None,
        **sample_kwargs,
    ) -> xr.DataTree:
        """Sample the posterior; the relabelled DataTree is returned and kept as ``trace_``.

        See :func:`bayesmoe.inference.sample` for the arguments (``offset``: per-row
        log-exposures of Poisson experts; ``trials``: per-row numbers of trials of binomial
        experts; ``gate_X``: the gate's own covariates, default the
        experts' ``X``, zero columns for constant mixing weights). Predictions of a model whose
        gate has its own covariates take them as ``gate_X=`` too, or as extra columns of a
        DataFrame ``X_new``.

        Formula form: ``fit(data=df, formula="y ~ x1 + C(g)", gate_formula="~ z")`` builds
        ``X``, ``y``, ``gate_X`` and ``offset`` with :func:`bayesmoe.formula.design_matrices`
        and keeps the :class:`~bayesmoe.formula.Design` as ``design_``: the prediction methods
        then take new DataFrames and apply the same columns, contrasts and transforms.
        """
        classes = sample_kwargs.pop("classes", None)
        if formula is not None or data is not None:
            from bayesmoe.formula import formula_inputs

            dm = formula_inputs(
                X, y, data, formula, gate_formula, self.family, offset=offset, gate_X=gate_X
            )
            X, y, offset, gate_X, classes = dm.X, dm.y, dm.offset, dm.gate_X, dm.design.classes
            self.design_ = dm.design
        else:
            self.__dict__.pop("design_", None)
            if X is None and y is None:  # a missing X alone gets the shared check's message
                raise TypeError("`fit` needs X and y (or data= with formula=).")
        if backend not in BACKENDS:
            raise ValueError(f"`backend` must be one of {BACKENDS}; got {backend!r}.")
        model_options = set(self._options_names())
        for k in sample_kwargs:
            if k in model_options:
                raise TypeError(
                    f"`{k}` is a model option: pass it to MoE({k}=...), not to fit; got {k}="
                    f"{sample_kwargs[k]!r}."
                )
        _check_sample_kwargs("fit", sample_kwargs, backend)
        if isinstance(init, str) and init not in INITS:
            raise ValueError(f"`init` must be one of {INITS} or a fitted measure; got {init!r}.")
        names, X = _names_and_array(X)
        self.trace_ = sample(
            X,
            np.asarray(y),
            feature_names=feature_names or names,
            draws=draws,
            tune=tune,
            chains=chains,
            backend=backend,
            init=init,
            random_seed=random_seed,
            progressbar=progressbar,
            offset=offset,
            gate_X=gate_X,
            **({} if classes is None else {"classes": classes}),
            trials=trials,
            **self._options(),
            **sample_kwargs,
        )
        if getattr(self, "design_", None) is not None:
            self.trace_.attrs.update(self.design_.attrs())
        return self.trace_

    def _trace(self):
        if not hasattr(self, "trace_"):
            raise RuntimeError("This MoE is not fitted yet; call `fit(X, y)` first.")
        return self.trace_

    def _gate_callable(self):
        return self.gate if callable(self.gate) else None

    def predict(self, X_new, **kwargs) -> xr.Dataset:
        """Posterior predictive summary at new inputs (:func:`bayesmoe.inference.predict`).

        After a formula fit, ``X_new`` is a DataFrame and gets the fit's designs.
        """
        return _pred.predict(self._trace(), X_new, gate=self._gate_callable(), **kwargs)

    def posterior_predictive(self, X_new, **kwargs) -> xr.Dataset:
        """Posterior predictive draws (:func:`bayesmoe.inference.posterior_predictive`)."""
        return _pred.posterior_predictive(
            self._trace(), X_new, gate=self._gate_callable(), **kwargs
        )

    def gate_probabilities(self, X_new, **kwargs) -> xr.DataArray:
        """Posterior gate probabilities per expert (see :func:`bayesmoe.gate_probabilities`)."""
        return _pred.gate_probabilities(self._trace(), X_new, gate=self._gate_callable(), **kwargs)

    def conditional_density(self, X_new, y_grid, **kwargs) -> xr.Dataset:
        """p(y | x) on a grid (:func:`bayesmoe.inference.conditional_density`)."""
        return _pred.conditional_density(
            self._trace(), X_new, y_grid, gate=self._gate_callable(), **kwargs
        )

    def __repr__(self) -> str:
        opts = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.endswith("_"))
        return f"MoE({opts})"
