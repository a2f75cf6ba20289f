"""NUTS for a fixed number of experts: the driver (:mod:`.sampling`), the flat JAX density
(:mod:`.flat_model`) and its compiled NumPyro programs (:mod:`.jax_nuts`, :mod:`.jax_programs`).
"""
