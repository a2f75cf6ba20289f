"""Maximum likelihood by MM (docs/math.md §8): the fitter (:mod:`.mm`), its starts
(:mod:`.mm_starts`), its iteration engines (:mod:`.mm_engine`), its numpy updates
(:mod:`.mm_updates`), the compiled Numba kernels
(:mod:`.mm_numba`) and their background loading (:mod:`.mm_warmup`).

Nothing here imports PyMC, PyTensor or ArviZ.
"""
