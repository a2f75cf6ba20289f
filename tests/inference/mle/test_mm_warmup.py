"""engine="auto" does not wait for the compiled kernels (bayesmoe.inference.mle.mm_warmup)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bayesmoe.inference.mle import mm_numba, mm_warmup

numba_only = pytest.mark.skipif(not mm_numba.available(), reason="numba not installed")
ROOT = Path(__file__).resolve().parents[3]

# A fresh process: the first "auto" fit runs numpy, the load starts after it; once loaded, fits of
# both families run the compiled kernels without compiling a specialisation the warm-up missed.
FRESH = r"""
import json, warnings
import numpy as np
from bayesmoe.data import simulate
from bayesmoe.inference.mle import mm_numba, mm_warmup
from bayesmoe.inference.mle.mm import fit_mle
warnings.simplefilter("ignore")
X, y, _ = simulate("S-B", n=300, random_seed=0)
Xc, yc, _ = simulate("S-D", n=300, random_seed=6)
first = fit_mle(X, y, 2, n_starts=3, random_seed=1)
started = mm_warmup._state
ok = mm_warmup.wait(600)
disp = {k: v for k, v in vars(mm_numba).items() if hasattr(v, "signatures")}
before = {k: len(v.signatures) for k, v in disp.items()}
second = fit_mle(X, y, 2, n_starts=3, random_seed=1)
cat = fit_mle(Xc, yc, 2, family="categorical", n_starts=3, random_seed=1, max_iter=200)
big = fit_mle(X, y, 2, n_starts=6, random_seed=1, prune_rows=100)  # subsampled short runs
after = {k: len(v.signatures) for k, v in disp.items()}
print(json.dumps(dict(first=first.engine_, started=started, ok=ok, second=second.engine_,
      cat=cat.engine_, big=big.engine_, ll=[first.loglik_, second.loglik_],
      new={k: after[k] - before[k] for k in after if after[k] != before[k]})))
"""


@numba_only
def test_fresh_process_fits_numpy_first_then_the_loaded_kernels():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop(mm_warmup.ENV, None)
    r = subprocess.run(
        [sys.executable, "-c", FRESH], capture_output=True, text=True, env=env, timeout=900
    )
    assert r.returncode == 0, r.stderr[-2000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["first"] == "numpy" and out["started"] in ("loading", "ready")
    assert out["ok"] and out["second"] == out["cat"] == out["big"] == "numba"
    assert out["new"] == {}, "the warm-up missed specialisations a fit compiles"
    # same start, same maps: the two engines reach the same optimum (round-off apart)
    assert out["ll"][0] == pytest.approx(out["ll"][1], rel=1e-8)


@numba_only
def test_blocking_switch_waits_for_the_kernels(monkeypatch):
    monkeypatch.setenv(mm_warmup.ENV, "0")
    monkeypatch.setattr(mm_warmup, "_state", "idle")
    monkeypatch.setattr(mm_warmup, "_thread", None)
    assert mm_warmup.auto_engine() == "numba" and mm_warmup.ready()
    monkeypatch.setenv(mm_warmup.ENV, "1")  # twin: the default does not wait
    monkeypatch.setattr(mm_warmup, "_state", "idle")
    assert mm_warmup.auto_engine() == "numpy" and mm_warmup._state == "idle"


@pytest.mark.parametrize("warm", [False, True])
def test_cold_cache_is_announced_once_on_stderr(monkeypatch, capsys, warm):
    monkeypatch.setattr(mm_warmup, "cache_is_warm", lambda: warm)
    monkeypatch.setattr(mm_warmup, "_told", False)
    monkeypatch.setattr(mm_warmup, "_state", "idle")
    mm_warmup.tell_if_cold("the fit waits for them")
    mm_warmup.tell_if_cold("the fit waits for them")
    err = capsys.readouterr().err
    assert err.count("compiling the MM fitter's Numba kernels") == (0 if warm else 1)
    if not warm:
        assert err.startswith("bayesmoe:") and err.count("\n") == 1
        assert "the fit waits for them" in err


@numba_only
def test_cache_is_warm_sees_an_empty_cache(tmp_path):
    code = "from bayesmoe.inference.mle import mm_warmup; print(mm_warmup.cache_is_warm())"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NUMBA_CACHE_DIR": str(tmp_path)}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip() == "False"
    # twin: once the kernels have been loaded (or compiled and written), the cache is warm
    mm_warmup.start()
    assert mm_warmup.wait(600)
    assert mm_warmup.cache_is_warm() is True


@numba_only
def test_seeded_starts_do_not_take_an_engine_chosen_by_timing(monkeypatch):
    monkeypatch.setattr(mm_warmup, "_state", "idle")
    monkeypatch.setattr(mm_warmup, "_thread", None)
    big = mm_warmup.NUMPY_MAX_N + 1
    assert mm_warmup.fixed_engine(mm_warmup.NUMPY_MAX_N) == "numpy"
    assert mm_warmup.fixed_engine(big, "poisson") == "numpy"  # no compiled kernels
    assert mm_warmup.fixed_engine(big, "gaussian", own_gate=True) == "numpy"
    assert mm_warmup._state == "idle"  # numpy starts: nothing loaded
    # above the threshold the kernels are loaded first, so "auto" always runs them
    assert mm_warmup.fixed_engine(mm_warmup.NUMPY_MAX_N + 1) == "auto" and mm_warmup.ready()
    assert mm_warmup.auto_engine() == "numba"


@numba_only
def test_fork_waits_for_a_running_load(monkeypatch):
    import threading

    release = threading.Event()
    t = threading.Thread(target=release.wait, daemon=True)  # stands in for a running load
    t.start()
    monkeypatch.setattr(mm_warmup, "_thread", t)
    threading.Timer(0.3, release.set).start()
    mm_warmup._before_fork()
    assert not t.is_alive()  # twin: without the join the stand-in would still be waiting


@pytest.mark.parametrize("compiling", [True, False])
def test_exit_waits_for_a_cold_compile_only(monkeypatch, compiling):
    import threading

    release = threading.Event()
    t = threading.Thread(target=release.wait, daemon=True)  # stands in for a running load
    t.start()
    checked = threading.Event()
    checked.set()
    monkeypatch.setattr(mm_warmup, "_thread", t)
    monkeypatch.setattr(mm_warmup, "_checked", checked)
    monkeypatch.setattr(mm_warmup, "_compiling", compiling)
    timer = threading.Timer(0.3, release.set)
    timer.start()
    mm_warmup._finish_compile()
    assert t.is_alive() is (not compiling)  # a warm load is dropped, a compile is finished
    release.set()
    t.join()


HOLD = r"""
import json, pathlib, sys, time
from bayesmoe.inference.mle import mm_warmup
here = pathlib.Path(sys.argv[1])
(here / f"ready-{sys.argv[2]}").touch()
while len(list(here.glob("ready-*"))) < 2:  # both processes reach the lock together
    time.sleep(0.01)
with mm_warmup.compile_lock():
    t0 = time.time()
    time.sleep(0.5)
    t1 = time.time()
print(json.dumps([t0, t1]))
"""


@pytest.mark.parametrize("same_cache", [True, False])
def test_compile_lock_lets_one_process_compile_at_a_time(tmp_path, same_cache):
    """Two processes holding the lock for 0.5 s each: with the same Numba cache their holds do not
    overlap; twin: with different caches (different locks) they overlap, so the test can fail.
    """
    procs = []
    for i in range(2):
        cache = tmp_path / ("shared" if same_cache else f"own{i}")
        env = {**os.environ, "PYTHONPATH": str(ROOT), "NUMBA_CACHE_DIR": str(cache)}
        cmd = [sys.executable, "-c", HOLD, str(tmp_path), str(i)]
        procs.append(subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env))
    (a0, a1), (b0, b1) = sorted(json.loads(p.communicate(timeout=120)[0]) for p in procs)
    assert all(p.returncode == 0 for p in procs)
    overlap = a1 > b0
    assert overlap is not same_cache, (a0, a1, b0, b1)


LOAD_FIRST = r"""
import json, numpy as np
from bayesmoe.data import simulate
from bayesmoe.inference.mle import mm_warmup
from bayesmoe.inference.mle.mm import fit_mle
X, y, _ = simulate("S-B", n=80, random_seed=0)
engine = __import__("sys").argv[1]
r = fit_mle(X, y, 2, n_starts=2, random_seed=0, engine=engine)
print(json.dumps(dict(engine=r.engine_, state=mm_warmup._state,
                      thread=mm_warmup._thread is not None)))
"""


@numba_only
@pytest.mark.parametrize("engine", ["numba", "numpy"])
def test_numba_engine_loads_through_the_warm_up(engine):
    """engine="numba" loads the kernels through the warm-up thread (so a cold cache compiles
    under compile_lock); twin: the numpy engine starts no load.
    """
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run(
        [sys.executable, "-c", LOAD_FIRST, engine], capture_output=True, text=True, env=env
    )
    assert r.returncode == 0, r.stderr[-2000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["engine"] == engine
    loaded = ("ready", True) if engine == "numba" else ("idle", False)
    assert (out["state"], out["thread"]) == loaded
