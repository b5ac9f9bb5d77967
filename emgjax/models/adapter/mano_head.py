"""Mode 2 of the adapter pipeline: 20 emg2pose joint angles -> 45 MANO theta values.

The original project's AngleConverter: an MLP 20 -> 128 -> 256 -> 45 with
LayerNorm, LeakyReLU and dropout 0.3 after each hidden layer, applied to every
time sample. It is trained on MANO theta labels where a session has them
(``emgjax.recipes.adapter.objectives.mano_theta_loss``). Turning theta into MANO joints
or a mesh needs the MANO model files, which are licence-restricted: emgjax does
not ship them, so this head stops at theta.
"""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp

from emgjax.config import Config

__all__ = ["ManoHeadConfig", "AngleConverter"]


@dataclasses.dataclass(frozen=True)
class ManoHeadConfig(Config):
    """Sizes of the angle -> MANO theta MLP (the original's defaults)."""

    in_features: int = 20
    hidden: tuple[int, ...] = (128, 256)
    out_features: int = 45
    dropout: float = 0.3

    def __post_init__(self):
        object.__setattr__(self, "hidden", tuple(int(h) for h in self.hidden))
        if self.in_features < 1 or self.out_features < 1 or any(h < 1 for h in self.hidden):
            raise ValueError(
                f"ManoHeadConfig: expected positive sizes, found in {self.in_features}, hidden "
                f"{self.hidden}, out {self.out_features}"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"ManoHeadConfig.dropout: expected a rate in [0, 1), found {self.dropout}")


class AngleConverter(nn.Module):
    """angles (B, 20, T) -> MANO theta (B, 45, T), per time sample."""

    config: ManoHeadConfig

    @nn.compact
    def __call__(self, angles: jax.Array, *, train: bool = False) -> jax.Array:
        cfg = self.config
        if angles.ndim != 3 or angles.shape[1] != cfg.in_features:
            raise ValueError(
                f"AngleConverter expects angles shaped (batch, {cfg.in_features}, time); found {tuple(angles.shape)}"
            )
        x = jnp.swapaxes(angles, 1, 2)  # (B, T, 20)
        for i, width in enumerate(cfg.hidden):
            x = nn.Dense(width, name=f"dense_{i}")(x)
            x = nn.LayerNorm(epsilon=1e-5, name=f"norm_{i}")(x)  # PyTorch's eps
            x = nn.leaky_relu(x, 0.01)
            x = nn.Dropout(cfg.dropout, deterministic=not train)(x)
        x = nn.Dense(cfg.out_features, name="out")(x)
        return jnp.swapaxes(x, 1, 2)
