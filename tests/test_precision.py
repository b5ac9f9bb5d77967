"""The direct model's bfloat16 precision option: close to float32, float32 outputs, and a clear error."""

from __future__ import annotations

import dataclasses

import jax
import numpy as np
import pytest

from emgjax.models.direct import DirectConfig, DirectModel

TINY = DirectConfig(conv_channels=(4, 8), lstm_hidden=8, head_hidden=8, output="angles")


def test_bfloat16_matches_float32_within_bfloat16_rounding():
    emg = np.random.default_rng(0).normal(size=(2, 8, 16)).astype(np.float32)
    variables = DirectModel(TINY).init_variables(jax.random.key(0), 16)
    full, _ = DirectModel(TINY).apply(variables, emg)
    half, carry = DirectModel(dataclasses.replace(TINY, compute_dtype="bfloat16")).apply(variables, emg)
    assert half.dtype == np.float32 and carry.c.dtype == np.float32
    # bfloat16 keeps 8 mantissa bits (relative rounding 2^-8): differences of that order, not zero.
    difference = np.abs(np.asarray(half) - np.asarray(full))
    assert 0.0 < difference.max() < 2e-2 * max(1.0, float(np.abs(full).max()))


def test_unknown_compute_dtype_is_refused():
    with pytest.raises(ValueError, match="compute_dtype: expected one of"):
        DirectConfig(compute_dtype="float16")
