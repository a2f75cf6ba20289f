"""Expert parameters scaled by their expert's gate weight: a change of variables for NUTS.

A light expert (few observations under its gate weight) has wide expert parameters, and the
width grows as its gate intercept falls: a funnel (benchmarks/README.md "Min-ESS spread over
sampler seeds"). This module samples ``z`` instead of the flat unconstrained vector ``x`` of
:class:`.flat_model.FlatModel`, with the gate coordinates unchanged and every expert coordinate
``j`` of expert ``k``

    x_j = mu_j(g) + s_j(g) (z_j - m_j),

where ``g`` are the gate coordinates, ``m`` the MM point, and ``s``, ``mu`` the sd ratio and
mean of a normal conditional posterior whose data precision follows the expert's gate mass
``n_k(g) = sum_i pi_ik(g)`` (``rho_k = n_k(g) / n_k(g_MM)``):

    P_j = p0_j + (P_hat_j - p0_j) rho_k,  s_j = sqrt(P_hat_j / P_j),
    mu_j = rho_k P_hat_j m_j / P_j  (normal-prior blocks; mu_j = m_j otherwise),

with ``P_hat`` the diagonal of the observed information at the MM point and ``p0`` the prior
precision. At the MM gate the map is the identity. For fixed ``g`` it is affine in the expert
coordinates, so the Jacobian is triangular and ``log |det J| = sum_j log s_j``: the density of
``z`` is ``logp(x(z)) + sum_j log s_j`` and the posterior of ``x`` is unchanged
(tests/inference/nuts/test_reparam.py checks the log density against the change of variables).

With ``slopes=True`` (``reparam="gate-scaled-slopes"``; zero-sum gates with covariates) the
lightest expert's gate slopes are scaled first, given the gate intercepts alone: per gate
feature, the component ``c = u . r`` of the raw zero-sum slope row ``r`` along that expert's
direction ``u`` becomes ``mu + t (c - m)``, with ``t`` and ``mu`` as above from the observed
information along ``u``, the slope prior's precision and the intercepts' softmax weight of the
expert relative to the MM point. The intercepts are unchanged, so the two maps compose into one
triangular map and the log-Jacobians add (``sum log t`` over the features).

The constants (``m``, ``P_hat``, ``p0``, ``n_k(g_MM)`` and an on/off switch) are data of the
compiled programs (``rp_*`` keys), so one program serves every data set of a shape and, switched
off, computes the gradient of ``logp(x)`` itself (used for ``P_hat``).
"""

from __future__ import annotations

import numpy as np

__all__ = ["GateScaled", "gate_scaled"]

#: block kinds whose coordinates are scaled (others: the map leaves the model alone)
_SCALED = {"normal": True, "halfnormal_log": False}  # kind -> the prior mean shift applies
_GATE = ("beta0_std", "beta1_std")


class GateScaled:
    """The change of variables ``z -> x`` of this module for one :class:`.FlatModel`.

    Build it with :func:`gate_scaled` (None when the model does not qualify).
    """

    def __init__(self, fm, slopes: bool = False, slope_shift: bool = True, rho_floor: float = 0.0):
        self.fm = fm
        # rho -> (rho + floor) / (1 + floor): the stretch stays below sqrt(1 + 1 / floor)
        self.rho_floor = float(rho_floor)
        self.slope_shift = bool(slope_shift)  # False: the slope map only scales (mu = m)
        K = fm.info.n_experts
        self.slopes = None  # flat indices (d_gate, K - 1) of the zero-sum gate slopes
        self.slope_prior = 1.0
        expert = np.full(fm.ndim, -1)
        shift = np.zeros(fm.ndim)
        p0 = np.ones(fm.ndim)
        i = 0
        for b in fm.blocks:
            if b.rv not in _GATE:
                idx = np.arange(b.size).reshape(b.shape)
                expert[i + idx] = np.broadcast_to(np.arange(K), b.shape)
                shift[i : i + b.size] = float(_SCALED[b.kind])
                p0[i : i + b.size] = 1.0 / b.scale**2
            elif slopes and b.kind == "zerosum" and b.rv == "beta1_std" and b.size:
                self.slopes = i + np.arange(b.size).reshape(b.shape)
                self.slope_prior = 1.0 / b.scale**2
            i += b.size
        self.expert, self.shift, self.p0 = expert, shift, p0
        self.mask = (expert >= 0).astype(float)
        # expert weight -> coordinate as a product with a one-hot (K, ndim) matrix: XLA's CPU
        # gather and its scatter-add gradient made the map's gradient 4.7x the plain density's
        self.onehot = np.eye(K)[:, np.maximum(expert, 0)] * self.mask
        if self.slopes is not None:  # raw slope rows (d, K - 1) -> flat: a (d, K-1, ndim) one-hot
            d = self.slopes.shape[0]
            self.slope_onehot = np.eye(fm.ndim)[self.slopes.reshape(-1)].reshape(d, K - 1, fm.ndim)

    # ----- the constants -------------------------------------------------------------------------
    def off(self) -> dict:
        """Constants of the identity map (the ``rp_*`` data with the switch off)."""
        n = self.fm.ndim
        K = self.fm.info.n_experts
        out = {
            "rp_on": np.zeros(()),
            "rp_center": np.zeros(n),
            "rp_prec": self.p0 * 2.0,
            "rp_p0": self.p0.copy(),
            "rp_n0": np.ones(K),
        }
        if self.slopes is not None:
            d = self.slopes.shape[0]
            out.update(
                rp_u=np.eye(K - 1)[0],
                rp_slope_prec=np.full(d, 2.0 * self.slope_prior),
                rp_slope_center=np.zeros(d),
                rp_w0=np.ones(()),
                rp_light=np.eye(K)[0],
            )
        return out

    def fit(self, x_hat: np.ndarray, neg_hess: np.ndarray, data: dict) -> dict:
        """Constants at the MM point ``x_hat`` with the observed information ``neg_hess``
        (ndim x ndim; its diagonal for the experts, its gate-slope blocks for the slopes).
        """
        out = self.off()
        neg_hess = np.asarray(neg_hess, float)
        x_hat = np.asarray(x_hat, float)
        out["rp_on"] = np.ones(())
        out["rp_center"] = x_hat.copy()
        # the data precision P_hat - p0 is kept positive (a flat expert direction: 1% of p0)
        out["rp_prec"] = np.maximum(np.diag(neg_hess), 1.01 * self.p0)
        mass = self._mass(np, x_hat, data)
        out["rp_n0"] = np.maximum(mass, 1e-12)
        if self.slopes is not None:  # the lightest expert's slope direction in the raw block
            K = self.fm.info.n_experts
            light = int(np.argmin(mass))
            from bayesmoe.inference.nuts.flat_model import _reduce_zerosum

            u = _reduce_zerosum(np.eye(K)[light] - 1.0 / K)
            u = u / np.linalg.norm(u)
            prec = np.array([u @ neg_hess[np.ix_(r, r)] @ u for r in self.slopes])
            out.update(
                rp_u=u,
                rp_slope_prec=np.maximum(prec, 1.01 * self.slope_prior),
                rp_slope_center=x_hat[self.slopes] @ u,
                rp_w0=np.asarray(self._intercept_weight(np, x_hat, np.eye(K)[light])),
                rp_light=np.eye(K)[light],
            )
        return out

    # ----- the map -------------------------------------------------------------------------------
    def _mass(self, xp, flat, data):
        """The gate mass of each expert, ``sum_i pi_ik`` (..., K)."""
        fm = self.fm
        free, _ = fm.constrain(flat, xp)
        b0, b1 = fm._gate_params(xp, free)
        eta = (xp.einsum("nd,...dk->...nk", data["Zs"], b1) + b0[..., None, :]) / (
            fm.info.temperature
        )
        ops = fm_ops(xp)
        return xp.exp(fm.info.gate_module.log_weights(eta, ops)).sum(-2)

    def _intercept_weight(self, xp, flat, light):
        """The softmax weight of the gate intercepts alone for the expert ``light`` (one-hot)."""
        free, _ = self.fm.constrain(flat, xp)
        b0, _ = self.fm._gate_params(xp, free)
        b0 = b0 / self.fm.info.temperature
        w = xp.exp(b0 - b0.max(-1, keepdims=True))
        return (w * light).sum(-1) / w.sum(-1)

    def _slope_map(self, xp, flat, data, inverse=False):
        """The gate slopes' part of the map (the intercepts are left alone): per feature row,
        the component c = u . raw along the lightest expert's direction u becomes
        mu + t (c - m) (forward) with t, mu from the intercepts' weight of that expert.
        Returns (the flat vector with new slopes, log |det| of this part).
        """
        rho = self._intercept_weight(xp, flat, data["rp_light"]) / data["rp_w0"]
        rho = (rho + self.rho_floor) / (1.0 + self.rho_floor)
        on = data["rp_on"]
        rho = on * rho + (1.0 - on)
        p_hat, p0, m = data["rp_slope_prec"], self.slope_prior, data["rp_slope_center"]
        P = p0 + (p_hat - p0) * rho[..., None]
        t = xp.sqrt(p_hat / P)
        mu = rho[..., None] * p_hat * m / P if self.slope_shift else m
        raw = xp.einsum("...n,dkn->...dk", flat, self.slope_onehot)  # the raw slope rows
        u = data["rp_u"]
        c = raw @ u  # (..., d)
        new_c = (c - mu) / t + m if inverse else mu + t * (c - m)
        # flat + the change of the slope rows, placed by a one-hot product (not a scatter)
        change = (new_c - c)[..., None] * u  # (..., d, K - 1)
        out = flat + xp.einsum("...dk,dkn->...n", change, self.slope_onehot)
        return out, xp.log(t).sum(-1)

    def _scale(self, xp, flat, data):
        """(s, mu) of every coordinate (1 and the coordinate itself's centre off the experts)."""
        rho = self._mass(xp, flat, data) / data["rp_n0"]
        rho = (rho + self.rho_floor) / (1.0 + self.rho_floor)
        on = data["rp_on"]
        rho = on * rho + (1.0 - on)
        r = rho @ self.onehot + (1.0 - self.mask)  # each coordinate's expert (1 off the experts)
        p_hat, p0, m = data["rp_prec"], data["rp_p0"], data["rp_center"]
        P = p0 + (p_hat - p0) * r
        s = xp.sqrt(p_hat / P)
        mu = self.shift * (r * p_hat * m / P) + (1.0 - self.shift) * m
        s = self.mask * s + (1.0 - self.mask)
        mu = self.mask * mu + (1.0 - self.mask) * m
        return s, mu

    def forward(self, z, data, xp=np):
        """``(x, log |det dx/dz|)`` from ``z`` (leading batch dims allowed)."""
        log_det = 0.0
        if self.slopes is not None:  # gate slopes given the intercepts, then the experts
            z, log_det = self._slope_map(xp, z, data)
        s, mu = self._scale(xp, z, data)  # the gate coordinates of z are now those of x
        x = mu + s * (z - data["rp_center"])
        return x, log_det + xp.log(s).sum(-1)

    def inverse(self, x, data) -> np.ndarray:
        """``z`` from ``x`` (numpy)."""
        x = np.asarray(x, float)
        s, mu = self._scale(np, x, data)
        z = data["rp_center"] + (x - mu) / s
        if self.slopes is not None:
            z, _ = self._slope_map(np, z, data, inverse=True)
        return z

    def logp(self, z, data, xp=np):
        """Log density of ``z``: ``logp(x(z)) + log |det dx/dz|``."""
        x, log_det = self.forward(z, data, xp)
        ops = fm_ops(xp)
        return self.fm.logp(x, ops, data) + log_det

    def jax_logp(self):
        """``logp(z, data)`` as a JAX function."""
        import jax.numpy as jnp

        return lambda z, data: self.logp(z, data, jnp)


def fm_ops(xp):
    """The families' array operations for numpy or jax.numpy."""
    from bayesmoe.families import NUMPY, jax_ops

    return NUMPY if xp is np else jax_ops()


def gate_scaled(
    fm, slopes: bool = False, slope_shift: bool = True, rho_floor: float = 0.0
) -> GateScaled | None:
    """The :class:`GateScaled` map of a :class:`.FlatModel`, or None: one expert, or an expert
    block of a kind other than ``normal`` / ``halfnormal_log`` (ordered intercepts, the
    Richardson–Green set), or a block whose last axis is not the experts.
    """
    K = fm.info.n_experts
    if K < 2:
        return None
    for b in fm.blocks:
        if b.rv in _GATE:
            continue
        if b.kind not in _SCALED or not b.shape or b.shape[-1] != K:
            return None
    return GateScaled(fm, slopes=slopes, slope_shift=slope_shift, rho_floor=rho_floor)
