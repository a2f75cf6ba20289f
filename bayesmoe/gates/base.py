"""The gate protocol: what every backend asks of a gate (docs/math.md §1.3).

A gate is one module with one :class:`Gate` instance (or a class, for gates with options). It
declares

- its **stored name**, the word measures, traces and the CLI use for it;
- whether it reads **covariates** (a constant-weights gate does not: the gate's design has zero
  columns and the weights are ``softmax(beta0)``);
- its **input transform** ``M(z)``, written once against an
  :class:`~bayesmoe.families._ops.Ops` (numpy, jax.numpy or PyTensor) and applied to the gate's
  covariates before they are standardised: the PyMC builder applies it on tensors (so predictions
  on new data re-apply it), the compiled JAX density, the MM fitter, prediction and the
  diagnostics on numpy arrays (the transform touches data only, never parameters, so every
  backend evaluates it once per data set);
- its **log weights** given the logits ``eta = (beta1 . M(z)_s + beta0) / temperature``, the log
  of the mixing weights every mixture density adds to the experts' component log densities.

The package asks the gate (``get_gate``); it does not branch on a gate's name.
"""

from __future__ import annotations

from bayesmoe.families._ops import NUMPY, Ops

__all__ = ["Gate"]


class Gate:
    """A gate: input transform and log mixing weights.

    Attributes
    ----------
    name : str
        Stored name (measures, traces, the CLI).
    covariates : bool
        Whether the gate reads covariates (False: constant mixing weights).
    description : str
        One line for summaries and reports.
    """

    name: str = ""
    covariates: bool = True
    description: str = ""

    def transform(self, Z, ops: Ops = NUMPY):
        """The gate input ``M(z)``, elementwise on ``Z`` (any array of ``ops``)."""
        raise NotImplementedError

    def log_weights(self, eta, ops: Ops = NUMPY):
        """Log mixing weights over the expert axis (last) from the logits ``eta``."""
        return ops.log_softmax(eta, -1)

    def __repr__(self) -> str:
        return f"<gate {self.name!r}>"
