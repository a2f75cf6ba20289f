"""Maximum likelihood by MM (docs/math.md §5): the fitter (:mod:`.mm`), its numpy updates
(:mod:`.mm_updates`) and the compiled Numba kernels (:mod:`.mm_numba`).

Nothing here imports PyMC, PyTensor or ArviZ.
"""
