"""Independent check of the Voronoi losses (issue 11): a plain-loop reference written from
docs/math.md §4 alone, compared with ``voronoi_loss`` / ``voronoi_cells`` on hand-made measures.

The reference implements, with explicit Python loops and no shared code:

- masses ``p_k = exp(beta0_k) / sum_j exp(beta0_j)`` (the gate fixed by normalising the masses);
- gate slopes translated by their mass-weighted mean (the gauge of diagnostics/voronoi.py;
  a translation of every ``beta1_k`` by one vector leaves the gate unchanged);
- multinomial experts: reference class subtracted, then dropped;
- the cell of atom i is the first j minimising ``|theta_i - theta*_j|`` over the atom vector
  ``(beta1, a, b, sigma2)`` (sigma2 a *variance*);
- D1 = sum_j |sum_{i in A_j} p_i - p*_j| + sum_i p_i (|Δbeta1| + |Δa| + |Δb| + |Δsigma2|);
- D2: singleton cells as in D1; a Gaussian cell of m >= 2 atoms adds
  ``p_i (|(Δbeta1, Δb)|^rbar(m) + |(Δa, Δsigma2)|^(rbar(m)/2))`` with rbar(2) = 4, rbar(3) = 6;
  a multinomial one ``p_i (|Δbeta1|² + |Δa|² + |Δb|²)``.

Every comparison is to floating-point precision (1e-10 relative): both sides compute the same
finite sums, so any difference is a bug, not noise.
"""

import math

import numpy as np
import pytest

from bayesmoe.diagnostics.voronoi import voronoi_cells, voronoi_loss
from bayesmoe.measure import make_measure

RBAR = {2: 4.0, 3: 6.0}


# ---------------------------------------------------------------------------------------------
# plain-loop reference
# ---------------------------------------------------------------------------------------------
def _atoms(G):
    """List of atoms (p, beta1, a, b, sigma2 or None) in the gauge described above."""
    K = G.sizes["expert"]
    beta0 = [float(G.beta0.values[k]) for k in range(K)]
    z = sum(math.exp(v) for v in beta0)
    p = [math.exp(v) / z for v in beta0]
    d = G.sizes["feature"]
    b1 = [[float(G.beta1.values[f, k]) for f in range(d)] for k in range(K)]
    mean = [sum(p[k] * b1[k][f] for k in range(K)) for f in range(d)]
    atoms = []
    for k in range(K):
        beta1 = [b1[k][f] - mean[f] for f in range(d)]
        if "sigma2" in G:
            a = [float(G.a.values[f, k]) for f in range(d)]
            b = [float(G.b.values[k])]
            s2 = float(G.sigma2.values[k])
        else:
            M = G.sizes["class"]
            a = [
                float(G.a.values[f, s, k] - G.a.values[f, M - 1, k])
                for f in range(d)
                for s in range(M - 1)
            ]
            b = [float(G.b.values[s, k] - G.b.values[M - 1, k]) for s in range(M - 1)]
            s2 = None
        atoms.append((p[k], beta1, a, b, s2))
    return atoms


def _vec(atom):
    _, beta1, a, b, s2 = atom
    return beta1 + a + b + ([s2] if s2 is not None else [])


def _norm(v):
    return math.sqrt(sum(x * x for x in v))


def _diff(u, v):
    return [x - y for x, y in zip(u, v, strict=True)]


def ref_cells(G, T):
    fit, tru = _atoms(G), _atoms(T)
    cells = []
    for atom in fit:
        best, best_d = None, None
        for j, t in enumerate(tru):
            dist = _norm(_diff(_vec(atom), _vec(t)))
            if best_d is None or dist < best_d:
                best, best_d = j, dist
        cells.append(best)
    return cells


def ref_loss(G, T, kind):
    fit, tru = _atoms(G), _atoms(T)
    cells = ref_cells(G, T)
    gaussian = fit[0][4] is not None
    loss = 0.0
    for j, t in enumerate(tru):
        members = [i for i, c in enumerate(cells) if c == j]
        loss += abs(sum(fit[i][0] for i in members) - t[0])
        m = len(members)
        for i in members:
            p, beta1, a, b, s2 = fit[i]
            db1, da, db = _diff(beta1, t[1]), _diff(a, t[2]), _diff(b, t[3])
            ds2 = [s2 - t[4]] if gaussian else []
            if kind == "exact" or m == 1:
                loss += p * (_norm(db1) + _norm(da) + _norm(db) + _norm(ds2))
            elif gaussian:
                r = RBAR[m]
                loss += p * (_norm(db1 + db) ** r + _norm(da + ds2) ** (r / 2))
            else:
                loss += p * (_norm(db1) ** 2 + _norm(da) ** 2 + _norm(db) ** 2)
    return loss


# ---------------------------------------------------------------------------------------------
# hand-made measures
# ---------------------------------------------------------------------------------------------
# Gaussian truth, d = 2, K* = 2 with unequal masses (so the gauge matters).
TRUTH = make_measure(
    [0.4, 0.0], [[2.0, -1.0], [0.5, 1.0]], [[1.0, -1.0], [0.5, 2.0]], [0.0, 3.0], [0.5, 2.0]
)


def gaussian(beta0, beta1, a, b, sigma2):
    return make_measure(beta0, beta1, a, b, sigma2)


def _split_measure(j, fracs, deltas, truth=TRUTH):
    """Truth with atom j replaced by len(fracs) atoms of mass share `fracs` and parameter offsets
    `deltas` (dicts of beta1 / a / b / sigma2 offsets)."""
    K = truth.sizes["expert"]
    idx = list(range(K)) + [j] * (len(fracs) - 1)
    beta0 = truth.beta0.values[idx].copy()
    beta1 = truth.beta1.values[:, idx].copy()
    a = truth.a.values[:, idx].copy()
    b = truth.b.values[idx].copy()
    s2 = truth.sigma2.values[idx].copy()
    slots = [j] + list(range(K, K + len(fracs) - 1))
    for slot, frac, dlt in zip(slots, fracs, deltas, strict=True):
        beta0[slot] += math.log(frac)
        beta1[:, slot] += dlt.get("beta1", 0.0)
        a[:, slot] += dlt.get("a", 0.0)
        b[slot] += dlt.get("b", 0.0)
        s2[slot] += dlt.get("sigma2", 0.0)
    return gaussian(beta0, beta1, a, b, s2)


CASES = {
    "exact, perturbed": gaussian(
        [0.5, -0.05], [[2.1, -1.0], [0.5, 0.8]], [[1.1, -1.0], [0.5, 2.3]], [0.2, 3.0], [0.6, 1.7]
    ),
    "split in 2": _split_measure(
        0, [0.6, 0.4], [{"beta1": 0.2, "a": -0.1}, {"b": 0.3, "sigma2": 0.2, "beta1": -0.3}]
    ),
    "split in 3": _split_measure(
        1, [0.5, 0.3, 0.2], [{"a": 0.2}, {"b": -0.2, "sigma2": 0.3}, {"beta1": 0.4, "a": -0.3}]
    ),
    "tiny far extra atom": _split_measure(
        1, [0.999, 0.001], [{}, {"beta1": np.array([0.0, 4.0]), "a": np.array([0.0, 3.0])}]
    ),
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("kind", ["exact", "overfitted"])
def test_loss_matches_plain_loop_reference(case, kind):
    G = CASES[case]
    assert ref_cells(G, TRUTH) == voronoi_cells(G, TRUTH).assignment.values.tolist()
    assert float(voronoi_loss(G, TRUTH, kind=kind)) == pytest.approx(
        ref_loss(G, TRUTH, kind), rel=1e-10, abs=1e-14
    )


def test_split_cells_use_rbar_2_and_3():
    # Cell sizes as constructed: the split-in-2 case has cells (2, 1), split-in-3 (1, 3).
    assert voronoi_cells(CASES["split in 2"], TRUTH).cell_size.values.tolist() == [2, 1]
    assert voronoi_cells(CASES["split in 3"], TRUTH).cell_size.values.tolist() == [1, 3]
    # Only the powers differ between a cell of 2 and 3: rebuild the size-3 value with r̄ = 4
    # (wrong) and check that the function does not return it.
    G = CASES["split in 3"]
    with_4 = float(voronoi_loss(G, TRUTH, kind="overfitted", r_bar={3: 4.0}))
    assert with_4 != pytest.approx(float(voronoi_loss(G, TRUTH, kind="overfitted")), rel=1e-3)


def test_exact_copy_split_has_zero_loss():
    # Mass-weighted gauge: a split into copies with masses adding up leaves every term 0.
    G = _split_measure(0, [0.3, 0.7], [{}, {}])
    assert float(voronoi_loss(G, TRUTH, kind="overfitted")) == pytest.approx(0.0, abs=1e-12)
    assert ref_loss(G, TRUTH, "overfitted") == pytest.approx(0.0, abs=1e-12)


def test_tiny_far_atom_dominates_d2_by_its_rbar_power():
    # Atom 2 (p* = 1 - q) keeps 0.999 of its mass; an extra atom gets 0.001 of it at
    # Δbeta1 = (0, 4), Δa = (0, 3). The gauge moves every slope by s = 0.001 (1 - q) (0, 4).
    # Closed form: D1 = q|s| + 0.999(1-q)|s| + 0.001(1-q)(|(0,4) - s| + 3)  (mass term 0);
    #              D2 = q|s| + 0.999(1-q)|s|^4 + 0.001(1-q)(|(0,4) - s|^4 + 3^2).
    q = math.exp(0.4) / (1 + math.exp(0.4))
    s = 0.001 * (1 - q) * 4.0
    d1 = q * s + 0.999 * (1 - q) * s + 0.001 * (1 - q) * ((4 - s) + 3)
    d2 = q * s + 0.999 * (1 - q) * s**4 + 0.001 * (1 - q) * ((4 - s) ** 4 + 9)
    G = CASES["tiny far extra atom"]
    assert voronoi_cells(G, TRUTH).cell_size.values.tolist() == [1, 2]
    assert float(voronoi_loss(G, TRUTH, kind="exact")) == pytest.approx(d1, rel=1e-10)
    assert float(voronoi_loss(G, TRUTH, kind="overfitted")) == pytest.approx(d2, rel=1e-10)
    # a mass of 4e-4 at distance 4 makes D2 (≈ 0.107) 24 times D1 (≈ 0.0044)
    assert d2 > 20 * d1


def test_variance_not_sd_enters():
    # sigma2 is a variance: truth variance 0.5 -> fit 2.0 (sd 0.707 -> 1.414) gives Δ = 1.5.
    G = gaussian(TRUTH.beta0.values, TRUTH.beta1.values, TRUTH.a.values, TRUTH.b.values, [2.0, 2.0])
    p1 = math.exp(0.4) / (math.exp(0.4) + 1.0)
    assert float(voronoi_loss(G, TRUTH)) == pytest.approx(p1 * 1.5, rel=1e-12)


@pytest.mark.parametrize("case", list(CASES))
def test_gate_translation_leaves_loss_unchanged(case):
    # (t0, t1) added to every expert's (beta0, beta1) does not change the gate nor the loss.
    G = CASES[case]
    t0, t1 = 1.7, np.array([[-3.0], [0.25]])
    H = gaussian(G.beta0.values + t0, G.beta1.values + t1, G.a.values, G.b.values, G.sigma2.values)
    for kind in ("exact", "overfitted"):
        assert float(voronoi_loss(H, TRUTH, kind=kind)) == pytest.approx(
            float(voronoi_loss(G, TRUTH, kind=kind)), rel=1e-10
        )


def test_cell_assignment_uses_all_blocks():
    # An atom whose gate slope is nearest to atom 0 but whose expert is (much) nearer atom 1
    # belongs to atom 1's cell: the distance is over the whole vector (beta1, a, b, sigma2).
    G = _split_measure(1, [0.9, 0.1], [{}, {"beta1": np.array([2.4, -0.4])}])
    assert voronoi_cells(G, TRUTH).assignment.values.tolist() == [0, 1, 1]
    assert ref_cells(G, TRUTH) == [0, 1, 1]


def test_multinomial_matches_reference():
    a_t = np.zeros((1, 3, 2))
    a_t[0, 0], a_t[0, 1] = [1.0, -1.0], [0.5, 2.0]
    b_t = np.array([[0.5, -0.5], [-0.5, 0.5], [0.0, 0.0]])
    T = make_measure([0.3, 0.0], [[1.5, 0.0]], a_t, b_t)
    idx = [0, 1, 1]
    a = a_t[:, :, idx] + np.array([0.0, 0.1, -0.2])  # also moves the reference class
    b = b_t[:, idx] + np.array([[0.05, -0.1, 0.2], [0.0, 0.0, 0.1], [0.3, 0.0, 0.0]])
    G = make_measure([0.3, np.log(0.6), np.log(0.4)], [[1.6, 0.0, 0.3]], a, b)
    assert voronoi_cells(G, T).assignment.values.tolist() == ref_cells(G, T) == [0, 1, 1]
    for kind in ("exact", "overfitted"):
        assert float(voronoi_loss(G, T, kind=kind)) == pytest.approx(
            ref_loss(G, T, kind), rel=1e-10
        )


# ---------------------------------------------------------------------------------------------
# centring of the inputs (the `X` argument)
# ---------------------------------------------------------------------------------------------
def test_masses_read_at_centred_inputs_with_X():
    from bayesmoe.data import simulate

    _, _, T = simulate("S-A", 5, random_seed=0)
    X = np.array([[0.0], [1.0]])  # mean 0.5
    at0 = voronoi_cells(T, T).true_mass.values
    atc = voronoi_cells(T, T, X=X).true_mass.values
    e = math.exp(-8.0)
    np.testing.assert_allclose(at0, [e / (1 + e), 1 / (1 + e)], rtol=1e-12)
    ec = math.exp(-8.0 + 25.0 * 0.5)
    np.testing.assert_allclose(atc, [ec / (1 + ec), 1 / (1 + ec)], rtol=1e-12)


@pytest.mark.parametrize("case", list(CASES))
def test_centred_loss_equals_loss_of_centred_reference_loop(case):
    # Centring by hand: beta0 += beta1 . c, b += a . c, then the plain-loop reference.
    G = CASES[case]
    X = np.array([[1.0, -2.0], [3.0, 0.0], [2.0, 5.0]])
    c = X.mean(0)

    def centred(M):
        return gaussian(
            M.beta0.values + c @ M.beta1.values,
            M.beta1.values,
            M.a.values,
            M.b.values + c @ M.a.values,
            M.sigma2.values,
        )

    for kind in ("exact", "overfitted"):
        assert float(voronoi_loss(G, TRUTH, kind=kind, X=X)) == pytest.approx(
            ref_loss(centred(G), centred(TRUTH), kind), rel=1e-10
        )


def test_bad_X_for_centring():
    with pytest.raises(ValueError, match="`X` must be a finite array"):
        voronoi_loss(CASES["split in 2"], TRUTH, X=np.zeros((3, 1)))
