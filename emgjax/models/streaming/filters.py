"""A causal IIR filter (second-order sections) for fixed-size chunks, as a few jittable matrix products.

A bundle's EMG preprocessing (notch and band-pass, `emgjax.data.signal.design_emg_filter`) has to
run inside the jitted streaming step, with its state carried from chunk to chunk. A sample-by-sample
``lax.scan`` would cost one sequential loop iteration per sample; instead the cascade is written in
state-space form ``z[t+1] = A z[t] + B u[t]``, ``y[t] = C z[t] + D u[t]`` (each section in scipy's
transposed direct form II, so the state is scipy's ``zi`` laid out section after section), and a chunk
of ``n`` samples is exactly

    y = O z0 + H u        (O: (n, N) observability rows C A^k; H: (n, n) lower-triangular impulse response)
    z_n = A^n z0 + K u    (K: (N, n) columns A^(n-1-j) B)

with the four matrices precomputed once in float64 for the chunk size. The result equals
``scipy.signal.sosfilt`` on the concatenated chunks up to float32 rounding (tested).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["ChunkFilter", "chunk_filter", "state_space", "filter_chunk", "zero_filter_state"]


def state_space(sos: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """(A (N, N), B (N,), C (N,), D) of a cascade of second-order sections (S, 6), N = 2 S, float64."""
    sos = np.asarray(sos, np.float64)
    if sos.ndim != 2 or sos.shape[1] != 6 or sos.shape[0] < 1:
        raise ValueError(f"sos: expected second-order sections of shape (S, 6), found shape {sos.shape}")
    a_total = np.zeros((0, 0))
    b_total = np.zeros(0)
    c_total = np.zeros(0)
    d_total = 1.0
    for b0, b1, b2, _a0, a1, a2 in sos / sos[:, 3:4]:  # a0 = 1 after the normalisation
        # One section in transposed direct form II: y = b0 u + z0; z0' = b1 u - a1 y + z1; z1' = b2 u - a2 y.
        a_sec = np.array([[-a1, 1.0], [-a2, 0.0]])
        b_sec = np.array([b1 - a1 * b0, b2 - a2 * b0])
        c_sec = np.array([1.0, 0.0])
        # Cascade: this section's input is the previous cascade's output (C_total z + D_total u).
        n = a_total.shape[0]
        a_new = np.zeros((n + 2, n + 2))
        a_new[:n, :n] = a_total
        a_new[n:, :n] = np.outer(b_sec, c_total)
        a_new[n:, n:] = a_sec
        b_total = np.concatenate([b_total, b_sec * d_total])
        c_total = np.concatenate([b0 * c_total, c_sec])
        d_total = b0 * d_total
        a_total = a_new
    return a_total, b_total, c_total, float(d_total)


class ChunkFilter(NamedTuple):
    """The chunk matrices of one filter and chunk size (float32 arrays; a pytree, so jit takes it as data).

    observe: (n, N); impulse: (n, n); advance: (N, N) = A^n; control: (N, n).
    """

    observe: jax.Array
    impulse: jax.Array
    advance: jax.Array
    control: jax.Array


def chunk_filter(sos: np.ndarray, chunk_samples: int) -> ChunkFilter:
    """The matrices that filter ``chunk_samples`` samples at once (see the module docstring)."""
    n = int(chunk_samples)
    if n < 1:
        raise ValueError(f"chunk_samples: expected a positive integer, found {chunk_samples!r}")
    a, b, c, d = state_space(sos)
    order = a.shape[0]
    powers = [np.eye(order)]
    for _ in range(n):
        powers.append(powers[-1] @ a)
    observe = np.stack([c @ powers[k] for k in range(n)])  # (n, N)
    response = np.concatenate([[d], [c @ powers[m - 1] @ b for m in range(1, n)]])  # h[0..n-1]
    index = np.arange(n)[:, None] - np.arange(n)[None, :]
    impulse = np.where(index >= 0, response[np.clip(index, 0, None)], 0.0)  # (n, n) Toeplitz, lower
    control = np.stack([powers[n - 1 - j] @ b for j in range(n)], axis=1)  # (N, n)
    return ChunkFilter(*(jnp.asarray(m, jnp.float32) for m in (observe, impulse, powers[n], control)))


def zero_filter_state(sos: np.ndarray, batch: int, channels: int) -> jax.Array:
    """A filter at rest: (batch, channels, N) zeros, N = 2 x the number of sections."""
    return jnp.zeros((batch, channels, 2 * np.asarray(sos).shape[0]), jnp.float32)


def filter_chunk(matrices: ChunkFilter, state: jax.Array, chunk: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Filter one chunk: state (B, C, N), chunk (B, C, n) -> (filtered (B, C, n), new state (B, C, N))."""
    filtered = jnp.einsum("kn,bcn->bck", matrices.observe, state) + jnp.einsum("kj,bcj->bck", matrices.impulse, chunk)
    new_state = jnp.einsum("mn,bcn->bcm", matrices.advance, state) + jnp.einsum("mj,bcj->bcm", matrices.control, chunk)
    return filtered, new_state
