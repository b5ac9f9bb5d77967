"""Test configuration: 4 virtual CPU devices for multi-device tests.

XLA reads XLA_FLAGS when the backend starts, so this runs before any test
module imports jax.
"""

import os

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=4")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
# Parity tests compare float32 results with PyTorch: no reduced-precision matmuls.
os.environ.setdefault("JAX_DEFAULT_MATMUL_PRECISION", "highest")
# Tests run in parallel workers on a 2-core machine: one BLAS/torch thread each
# (torch's tiny-model ops slow down ~10x when threads oversubscribe the cores).
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
