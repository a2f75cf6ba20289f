"""Backend choice: the compiled JAX path returns the same DataTree as PyMC's sampler, "auto" falls
back to PyMC cleanly, and the trace says which backend ran."""

import numpy as np
import pytest
import xarray as xr

from bayesmoe.data import simulate
from bayesmoe.inference.nuts import sampling
from bayesmoe.inference.nuts.jax_nuts import ensure_host_devices, mass_matrix_from_hessian
from bayesmoe.models import build_model

pytest.importorskip("jax")
pytest.importorskip("numpyro")


@pytest.fixture(scope="module")
def small():
    X, y, _ = simulate("S-B", n=200, random_seed=5)
    return X, y


@pytest.fixture(scope="module")
def two_traces(small):
    """The same call through "auto" (runs jax) and through "auto" with jax reported missing."""
    X, y = small
    kw = dict(n_experts=2, draws=40, tune=40, chains=2, random_seed=3, progressbar=False)
    jax_trace = sampling.sample(X, y, **kw)
    mp = pytest.MonkeyPatch()
    real = sampling._installed
    mp.setattr(sampling, "_installed", lambda b: False if b == "jax" else real(b))
    try:
        pymc_trace = sampling.sample(X, y, **kw)
    finally:
        mp.undo()
    return jax_trace, pymc_trace


def test_auto_runs_jax_and_records_it(two_traces):
    tr, _ = two_traces
    assert tr.attrs["sampler"] == "jax" and tr.attrs["backend_requested"] == "auto"
    assert tr.attrs["mass_matrix"] == "hessian-dense"
    assert tr.attrs["chain_method"] in ("parallel", "vectorized")
    assert tr.attrs["tune"] == 40 and "backend_fallback" not in tr.attrs


def test_auto_falls_back_to_pymc_when_jax_is_missing(two_traces):
    _, tr = two_traces
    assert tr.attrs["sampler"] == "pymc" and tr.attrs["backend_requested"] == "auto"
    assert "not installed" in tr.attrs["backend_fallback"]


def test_jax_trace_has_the_structure_of_the_pymc_trace(two_traces):
    jt, pt_ = two_traces
    assert set(jt.children) == set(pt_.children)
    for group in ("posterior", "log_likelihood", "constant_data", "observed_data"):
        a, b = jt[group].to_dataset(), pt_[group].to_dataset()
        assert set(a.data_vars) == set(b.data_vars), group
        for v in a.data_vars:
            assert a[v].dims == b[v].dims, (group, v)
        for c in a.coords:
            np.testing.assert_array_equal(a[c].values, b[c].values)
    xr.testing.assert_allclose(jt.constant_data.to_dataset(), pt_.constant_data.to_dataset())
    xr.testing.assert_equal(jt.observed_data.to_dataset(), pt_.observed_data.to_dataset())
    stats = jt.sample_stats.to_dataset()
    assert {"diverging", "lp", "tree_depth", "n_steps", "step_size", "energy"} <= set(stats)
    assert stats["diverging"].dtype == bool


def test_jax_log_likelihood_matches_the_model(two_traces, small):
    """The pointwise log-likelihood stored by the jax path is the model's, at the drawn values."""
    import pymc as pm

    jt, _ = two_traces
    X, y = small
    model, _ = build_model(X, y, n_experts=2)
    post = jt.posterior.to_dataset().isel(draw=slice(0, 3))
    ll = pm.compute_log_likelihood(
        xr.DataTree.from_dict({"posterior": post}),
        model=model,
        extend_inferencedata=False,
        progressbar=False,
    )
    np.testing.assert_allclose(ll["y"].values, jt.log_likelihood["y"].values[:, :3], rtol=1e-9)


def test_backend_jax_without_jax_names_the_fix(small, monkeypatch):
    X, y = small
    real = sampling._installed
    monkeypatch.setattr(sampling, "_installed", lambda b: False if b == "jax" else real(b))
    with pytest.raises(ValueError, match=r"backend='jax'.*jax"):
        sampling.sample(X, y, n_experts=2, backend="jax")


def test_pymc_only_keywords_send_auto_to_pymc(small):
    X, y = small
    model, info = build_model(X, y, n_experts=2)
    backend, fm, reason = sampling._resolve_backend("auto", model, info, {"nuts": {}})
    assert backend == "pymc" and fm is None and "nuts" in reason
    backend, fm, reason = sampling._resolve_backend("auto", model, info, {"target_accept": 0.9})
    assert backend == "jax" and fm is not None and reason is None
    with pytest.raises(ValueError, match="nuts"):
        sampling._resolve_backend("jax", model, info, {"nuts": {}})


def test_compile_message_is_printed(small, capsys, monkeypatch):
    """The message comes before the (compiling) sampler call; the sampler is stopped there."""
    import bayesmoe.inference.nuts.jax_nuts as jn

    class Reached(Exception):
        pass

    def stop(*args, **kwargs):
        raise Reached

    monkeypatch.setattr(jn, "sample_flat", stop)
    X, y = small
    with pytest.raises(Reached):
        sampling.sample(X, y, n_experts=2, draws=10, tune=10, chains=1, progressbar=True)
    assert "compiling model" in capsys.readouterr().err
    with pytest.raises(Reached):
        sampling.sample(X, y, n_experts=2, draws=10, tune=10, chains=1, progressbar=False)
    assert "compiling model" not in capsys.readouterr().err


def test_mass_matrix_from_hessian():
    rng = np.random.default_rng(0)
    A = rng.normal(size=(4, 4))
    info = A @ A.T + 4 * np.eye(4)
    np.testing.assert_allclose(mass_matrix_from_hessian(-info), np.linalg.inv(info), rtol=1e-10)
    np.testing.assert_allclose(
        mass_matrix_from_hessian(-info, dense=False), np.diag(np.linalg.inv(info)), rtol=1e-10
    )
    # an indefinite "information" (a saddle of the MM optimum) still gives a covariance
    saddle = np.diag([4.0, 1.0, -1.0, 0.0])
    inv = mass_matrix_from_hessian(-saddle)
    assert np.all(np.linalg.eigvalsh(inv) > 0) and np.isclose(inv[0, 0], 0.25)
    # the saddle direction takes |curvature| (variance 1), the flat one the prior-sized cap 9
    # (MIN_PRECISION), not 1e8 times the smallest variance
    np.testing.assert_allclose(np.diag(inv), [0.25, 1.0, 1.0, 9.0], rtol=1e-12)


def test_host_device_flag_respects_the_user(monkeypatch):
    monkeypatch.setenv("XLA_FLAGS", "--xla_force_host_platform_device_count=7")
    ensure_host_devices(2)
    import os

    assert os.environ["XLA_FLAGS"] == "--xla_force_host_platform_device_count=7"


def test_jax_path_runs_with_its_progress_bar(small):
    """NumPyro's progress bar is a host callback on another thread: under a thread-local
    ``jax.enable_x64`` it failed with "Incorrect output dtype ... Expected: int64" (the README's
    `bayesmoe run` crashed); float64 is now set globally for the run and restored after."""
    import jax

    X, y = small
    before = bool(jax.config.jax_enable_x64)
    trace = sampling.sample(
        X, y, n_experts=2, draws=20, tune=20, chains=2, random_seed=1, progressbar=True
    )
    assert trace.attrs["sampler"] == "jax"
    assert trace.posterior["beta0"].dtype == np.float64
    assert bool(jax.config.jax_enable_x64) == before


def test_cached_program_is_reused_without_tracing(tmp_path):
    """A second process (here: a second call) deserializes the exported program instead of
    tracing the Python function again; other settings or shapes get their own program."""
    import jax
    import jax.numpy as jnp

    from bayesmoe.inference.nuts.jax_programs import cached_program

    traced = []

    def make():
        traced.append(1)
        return jax.jit(lambda x, y: jnp.sin(x) * y + 1.0)

    x, y = jnp.arange(5.0), jnp.float32(2.0)
    first = cached_program("t", make, (x, y), settings={"a": 1}, cache_dir=str(tmp_path))
    assert len(traced) == 1 and len(list(tmp_path.glob("t-*.jaxexport"))) == 1

    def refuse():
        raise AssertionError("traced although the program is cached")

    again = cached_program("t", refuse, (x, y), settings={"a": 1}, cache_dir=str(tmp_path))
    np.testing.assert_array_equal(np.asarray(again(x, y)), np.asarray(first(x, y)))
    cached_program("t", make, (x, y), settings={"a": 2}, cache_dir=str(tmp_path))
    cached_program("t", make, (jnp.arange(6.0), y), settings={"a": 1}, cache_dir=str(tmp_path))
    assert len(traced) == 3 and len(list(tmp_path.glob("t-*.jaxexport"))) == 3
    (next(tmp_path.glob("t-*.jaxexport"))).write_bytes(b"damaged")  # re-exported, not an error
    for s in ({"a": 1}, {"a": 2}):
        cached_program("t", make, (x, y), settings=s, cache_dir=str(tmp_path))


def test_program_key_covers_the_source(monkeypatch):
    import jax.numpy as jnp

    from bayesmoe.inference.nuts import jax_programs

    args = (jnp.zeros(3),)
    before = jax_programs.program_key("p", {}, args)
    monkeypatch.setattr(jax_programs, "_source_digest", lambda: "edited")
    assert jax_programs.program_key("p", {}, args) != before


def test_program_key_covers_the_family_and_gate_modules():
    """An edited expert density or gate must not reuse a stored program (the families' glob
    once pointed at bayesmoe/inference/families, which does not exist, and hashed nothing)."""
    from bayesmoe.inference.nuts import jax_programs

    names = {(p.parent.name, p.name) for p in jax_programs._source_files()}
    assert {("families", "student_t.py"), ("families", "gaussian.py")} <= names
    assert {("gates", "softmax.py"), ("nuts", "flat_model.py")} <= names
    assert all(p.is_file() for p in jax_programs._source_files())


def test_exported_sampler_gives_the_traced_sampler_draws(small, monkeypatch):
    """The stored (exported) programs and freshly traced ones are the same computation: the
    same seed gives identical draws, statistics and log-likelihood."""
    import bayesmoe.inference.nuts.jax_nuts as jn

    X, y = small
    kw = dict(n_experts=2, draws=30, tune=30, chains=2, random_seed=11, progressbar=False)
    stored = sampling.sample(X, y, **kw)
    monkeypatch.setattr(jn, "compile_cache", lambda: None)  # no program files: plain jit
    traced = sampling.sample(X, y, **kw)
    assert traced.attrs["jax_compile_cache"] == "off"
    for group in ("posterior", "sample_stats", "log_likelihood"):
        xr.testing.assert_equal(stored[group].to_dataset(), traced[group].to_dataset())


def test_hessian_by_gradient_differences_equals_jax_hessian(small):
    import jax
    import jax.numpy as jnp

    from bayesmoe.inference.nuts.flat_model import flat_model
    from bayesmoe.inference.nuts.jax_nuts import _x64, hessian_fd

    X, y = small
    fm = flat_model(*build_model(X, y, n_experts=2))
    with _x64(jax):
        logp = fm.jax_logp()
        data = {k: jnp.asarray(v) for k, v in fm.data().items()}
        x = np.random.default_rng(1).normal(scale=0.3, size=fm.ndim)
        exact = np.asarray(jax.hessian(logp)(jnp.asarray(x), data))
        grad = jax.vmap(jax.grad(logp), in_axes=(0, None))
        approx = hessian_fd(grad, x, data)
    # central differences: relative truncation error O(h^2) ~ 1e-10 at h = 1e-5 (1 + |x|);
    # rounding ~ eps * |grad| / h ~ 1e-8 relative to the Hessian's scale (n = 200 terms)
    np.testing.assert_allclose(approx, exact, rtol=1e-6, atol=1e-6 * np.abs(exact).max())
