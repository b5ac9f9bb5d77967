"""The hardware adapter pipeline: MindRove EMG -> frozen emg2pose -> hand pose.

    emg (B, 8, T) at 500 Hz
      -> ChannelAdapter (8 -> 16 electrodes)          params["adapter"]["channel_adapter"]
      -> FrequencyUpsampler (500 Hz -> 2 kHz)         params["adapter"]["upsampler"]
      -> emg2pose (a converted Meta checkpoint from   params["emg2pose"]
         `load_pretrained`, or the benchmark's own)
      -> 20 joint angles (B, 20, 4T - left_context)
      -> Mode 1: FK landmarks with a hand model (B, T', 21, 3), MediaPipe or hand-model order
      -> Mode 2: AngleConverter -> MANO theta (B, 45, 4T - left_context)   params["mano_head"]

MANO joints or meshes from theta need the user's licence-restricted MANO
files; emgjax ships none, so Mode 2 stops at theta.

All parameters live in one tree ``{"adapter": {...}, "emg2pose": {...},
["mano_head": {...}]}``; what trains is decided by optax masks
(``emgjax.recipes.adapter.phases``), never by copying parameters around. The emg2pose
network always runs in inference mode (running BatchNorm statistics, no
dropout), also when its decoder is unfrozen in phase 2: its statistics came
from emg2pose data and should not drift towards adapter artefacts.

``validate_pipeline`` checks every configuration mismatch (unknown variant,
channel counts, upsampling factor vs sample rates, emg2pose input channels vs
adapter output) on the host, before anything is traced or compiled.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from emgjax import errors
from emgjax.config import Config
from emgjax.kinematics import forward_kinematics
from emgjax.kinematics.mediapipe import hand_model_to_mediapipe
from emgjax.models import pose_modules
from emgjax.models.adapter.channel_adapter import ADAPTER_KINDS, ChannelAdapter, ChannelAdapterConfig
from emgjax.models.adapter.mano_head import AngleConverter, ManoHeadConfig
from emgjax.models.adapter.upsampler import UPSAMPLER_KINDS, FrequencyUpsampler, UpsamplerConfig, check_rates
from emgjax.models.configs import PoseModelConfig

__all__ = [
    "PipelineConfig",
    "AdapterFrontEnd",
    "AdapterPipeline",
    "variant_config",
    "parse_variant",
    "validate_pipeline",
    "MINDROVE_RATE_HZ",
    "EMG2POSE_RATE_HZ",
]

MINDROVE_RATE_HZ = 500.0
EMG2POSE_RATE_HZ = 2000.0


@dataclasses.dataclass(frozen=True)
class PipelineConfig(Config):
    """One adapter pipeline: channel adapter, upsampler, rates, optional Mode-2 MANO head."""

    adapter: ChannelAdapterConfig = ChannelAdapterConfig()
    upsampler: UpsamplerConfig = UpsamplerConfig()
    input_rate: float = MINDROVE_RATE_HZ
    output_rate: float = EMG2POSE_RATE_HZ
    mano_head: ManoHeadConfig | None = None

    @property
    def name(self) -> str:
        return f"{self.adapter.kind}+{self.upsampler.kind}"

    @property
    def is_fixed(self) -> bool:
        """True when neither the adapter nor the upsampler has parameters (nothing to train)."""
        return self.adapter.kind in ("zero_fill", "duplicate", "interpolation") and self.upsampler.kind in (
            "zero_stuff",
            "hold",
            "linear",
            "sinc",
        )


@dataclasses.dataclass(frozen=True)
class AdapterModelConfig(Config):
    """A whole adapter model: the pipeline's front end and the frozen emg2pose behind it.

    What a saved adapter bundle records and what its streaming state is built from (hashable, so it
    can be a static jit argument).
    """

    pipeline: PipelineConfig
    emg2pose: PoseModelConfig


def parse_variant(name: str) -> tuple[str, str]:
    """'adapter+upsampler' -> (adapter kind, upsampler kind), with a clear error for unknown kinds."""
    if not isinstance(name, str) or name.count("+") != 1:
        raise ValueError(f"variant: expected 'ADAPTER+UPSAMPLER' (e.g. 'linear+sinc'), found {name!r}")
    adapter, upsampler = (part.strip() for part in name.split("+"))
    if adapter not in ADAPTER_KINDS:
        raise ValueError(f"variant {name!r}: unknown channel adapter {adapter!r}; expected one of {ADAPTER_KINDS}")
    if upsampler not in UPSAMPLER_KINDS:
        raise ValueError(f"variant {name!r}: unknown upsampler {upsampler!r}; expected one of {UPSAMPLER_KINDS}")
    return adapter, upsampler


def variant_config(
    name: str,
    *,
    in_channels: int = 8,
    out_channels: int = 16,
    input_rate: float = MINDROVE_RATE_HZ,
    output_rate: float = EMG2POSE_RATE_HZ,
    adapter_options: dict | None = None,
    upsampler_options: dict | None = None,
    mano_head: ManoHeadConfig | None = None,
) -> PipelineConfig:
    """A ``PipelineConfig`` from a variant name such as ``"conv+subpixel"``.

    The upsampling factor is derived from the rates; it must be a whole number.
    """
    adapter, upsampler = parse_variant(name)
    ratio = output_rate / input_rate if input_rate > 0 else float("nan")
    if not np.isfinite(ratio) or ratio < 1 or abs(ratio - round(ratio)) > 1e-9:
        raise ValueError(
            f"variant {name!r}: expected output_rate / input_rate to be a whole number >= 1, found "
            f"{output_rate:g} / {input_rate:g} = {ratio:g}"
        )
    config = PipelineConfig(
        ChannelAdapterConfig(
            kind=adapter, in_channels=in_channels, out_channels=out_channels, **(adapter_options or {})
        ),
        UpsamplerConfig(kind=upsampler, factor=round(ratio), channels=out_channels, **(upsampler_options or {})),
        input_rate,
        output_rate,
        mano_head,
    )
    return config


def validate_pipeline(
    config: PipelineConfig,
    emg2pose_config: PoseModelConfig | None = None,
    *,
    input_channels: int | None = None,
    input_rate: float | None = None,
) -> None:
    """Raise a ValueError naming expected vs found for any mismatch. Host-only: call before compiling.

    input_channels / input_rate: those of the data that will be fed (e.g. 8 and 500 Hz for MindRove).
    """
    if not isinstance(config, PipelineConfig):
        raise ValueError(f"expected a PipelineConfig, found {type(config).__name__}")
    adapter, upsampler = config.adapter, config.upsampler
    if adapter.out_channels != upsampler.channels:
        raise ValueError(
            f"channel adapter outputs {adapter.out_channels} channels but the upsampler expects "
            f"{upsampler.channels}; they must match"
        )
    check_rates(config.input_rate, config.output_rate, upsampler.factor)
    if input_channels is not None and input_channels != adapter.in_channels:
        raise ValueError(
            f"input EMG has {input_channels} channels but the channel adapter expects {adapter.in_channels}"
        )
    if input_rate is not None and abs(float(input_rate) - config.input_rate) > 1e-6 * config.input_rate:
        raise ValueError(f"input EMG is sampled at {input_rate:g} Hz but the pipeline expects {config.input_rate:g} Hz")
    if emg2pose_config is not None:
        if not isinstance(emg2pose_config, PoseModelConfig):
            raise ValueError(f"emg2pose config: expected a PoseModelConfig, found {type(emg2pose_config).__name__}")
        if emg2pose_config.in_channels != adapter.out_channels:
            raise ValueError(
                f"emg2pose expects {emg2pose_config.in_channels} input channels but the adapter "
                f"outputs {adapter.out_channels}"
            )
        if abs(emg2pose_config.sample_rate - config.output_rate) > 1e-6 * config.output_rate:
            raise ValueError(
                f"emg2pose expects EMG at {emg2pose_config.sample_rate:g} Hz but the upsampler "
                f"outputs {config.output_rate:g} Hz"
            )
        if config.mano_head is not None and config.mano_head.in_features != emg2pose_config.num_joints:
            raise ValueError(
                f"MANO head expects {config.mano_head.in_features} angles but emg2pose predicts "
                f"{emg2pose_config.num_joints}"
            )


class AdapterFrontEnd(nn.Module):
    """ChannelAdapter then FrequencyUpsampler: emg (B, 8, T) -> (B, 16, factor * T)."""

    config: PipelineConfig

    @nn.compact
    def __call__(self, emg: jax.Array, *, train: bool = False) -> jax.Array:
        x = ChannelAdapter(self.config.adapter, name="channel_adapter")(emg, train=train)
        return FrequencyUpsampler(self.config.upsampler, name="upsampler")(x, train=train)


def _mutable_collections(variables: dict) -> list[str]:
    return ["batch_stats"] if variables.get("batch_stats") else []


class AdapterPipeline:
    """Adapter front end + frozen emg2pose (+ optional MANO head), as pure functions of a variables tree.

    variables = {"params": {"adapter": ..., "emg2pose": ..., ["mano_head": ...]},
                 "batch_stats": {"adapter": ..., "emg2pose": ...}}   (empty dicts where a part has none)
    """

    def __init__(self, config: PipelineConfig, emg2pose_config: PoseModelConfig):
        validate_pipeline(config, emg2pose_config)
        self.config = config
        self.emg2pose_config = emg2pose_config
        self.front_end = AdapterFrontEnd(config)
        self.mano_head = None if config.mano_head is None else AngleConverter(config.mano_head)

    # ------------------------------------------------------------------ shapes and checks
    @property
    def factor(self) -> int:
        return self.config.upsampler.factor

    def min_input_length(self) -> int:
        """Shortest MindRove window (samples at input_rate) that gives one emg2pose output."""
        return -(-self.emg2pose_config.min_window_length() // self.factor)

    def output_length(self, num_samples: int) -> int:
        """Aligned prediction samples (at 2 kHz) for an input of num_samples (at 500 Hz)."""
        cfg = self.emg2pose_config
        return self.factor * num_samples - cfg.left_context - cfg.right_context

    def check_emg(self, emg: Any) -> None:
        """emg: (batch, in_channels, time) finite float array with a long enough window.

        Shapes and dtype are checked even while tracing; values only on the host.
        """
        layout = "(batch, channels, time)"
        errors.check_rank("emg", emg, 3, layout)
        errors.check_float_dtype("emg", emg)
        errors.check_axis_size("emg", emg, 1, self.config.adapter.in_channels, "channels", layout)
        errors.check_min_length(
            "emg",
            emg,
            2,
            self.min_input_length(),
            f"at {self.config.input_rate:g} Hz: emg2pose left context {self.emg2pose_config.left_context} at "
            f"{self.config.output_rate:g} Hz + one output step",
        )
        if not isinstance(emg, jax.core.Tracer):
            errors.check_finite("emg", emg)

    # ------------------------------------------------------------------ variables
    def init(self, rng: jax.Array, emg2pose_variables: dict, *, num_samples: int | None = None) -> dict:
        """Fresh adapter (and MANO head) variables around existing emg2pose variables."""
        num_samples = self.min_input_length() if num_samples is None else num_samples
        adapter_key, head_key = jax.random.split(rng)
        emg = jnp.zeros((1, self.config.adapter.in_channels, num_samples), jnp.float32)
        front = self.front_end.init({"params": adapter_key}, emg, train=False)
        params = {"adapter": dict(front.get("params", {})), "emg2pose": emg2pose_variables["params"]}
        if self.mano_head is not None:
            angles = jnp.zeros((1, self.emg2pose_config.num_joints, 1), jnp.float32)
            params["mano_head"] = dict(self.mano_head.init({"params": head_key}, angles)["params"])
        batch_stats = {
            "adapter": dict(front.get("batch_stats", {})),
            "emg2pose": dict(emg2pose_variables.get("batch_stats", {})),
        }
        return {"params": params, "batch_stats": batch_stats}

    # ------------------------------------------------------------------ forward
    def adapt(self, variables: dict, emg: jax.Array, *, train: bool = False, rng: jax.Array | None = None):
        """emg (B, 8, T) -> (emg_2k (B, 16, factor*T), new adapter batch_stats)."""
        adapter_vars = {"params": variables["params"]["adapter"]}
        stats = variables.get("batch_stats", {}).get("adapter", {})
        if stats:
            adapter_vars["batch_stats"] = stats
        rngs = {"dropout": rng} if (train and rng is not None) else None
        if train and stats:
            out, updates = self.front_end.apply(adapter_vars, emg, train=True, rngs=rngs, mutable=["batch_stats"])
            return out, dict(updates["batch_stats"])
        return self.front_end.apply(adapter_vars, emg, train=train, rngs=rngs), stats

    def pose(self, variables: dict, emg_2k: jax.Array, initial_pos: jax.Array | None = None) -> jax.Array:
        """emg2pose (inference mode) on adapted EMG: (B, 16, T2) -> aligned angles (B, 20, T2 - left - right)."""
        cfg = self.emg2pose_config
        emg2pose_vars = {"params": variables["params"]["emg2pose"]}
        stats = variables.get("batch_stats", {}).get("emg2pose", {})
        if stats:
            emg2pose_vars["batch_stats"] = stats
        if initial_pos is None:
            initial_pos = jnp.zeros((emg_2k.shape[0], cfg.num_joints), emg_2k.dtype)
        raw = pose_modules.predict_pose(cfg, emg2pose_vars, emg_2k, initial_pos)
        return pose_modules.align_predictions(raw, emg_2k.shape[-1] - cfg.left_context - cfg.right_context)

    def __call__(
        self,
        variables: dict,
        emg: jax.Array,
        initial_pos: jax.Array | None = None,
        *,
        hand=None,
        landmark_order: str = "mediapipe",
        landmark_every: int = 40,
        train: bool = False,
        rng: jax.Array | None = None,
    ) -> tuple[dict, dict]:
        """Run the whole pipeline.

        emg: (B, 8, T) at 500 Hz; initial_pos: (B, 20) rollout start (zeros if None).
        hand: a HandModel for Mode 1 landmarks (FK on every ``landmark_every``-th aligned sample),
        ``landmark_order`` "mediapipe" or "hand_model".
        Returns (outputs, new batch_stats) with outputs
          "emg_2k": (B, 16, 4T), "angles": (B, 20, 4T - left_context),
          ["landmarks": (B, ceil((4T - left_context) / landmark_every), 21, 3) mm],
          ["mano_theta": (B, 45, 4T - left_context)] when the config has a MANO head.
        """
        if landmark_order not in ("mediapipe", "hand_model"):
            raise ValueError(f"landmark_order: expected 'mediapipe' or 'hand_model', found {landmark_order!r}")
        self.check_emg(emg)
        adapter_rng, head_rng = (None, None) if rng is None else tuple(jax.random.split(rng))
        emg_2k, adapter_stats = self.adapt(variables, emg, train=train, rng=adapter_rng)
        angles = self.pose(variables, emg_2k, initial_pos)
        outputs = {"emg_2k": emg_2k, "angles": angles}
        if hand is not None:
            landmarks = forward_kinematics(jnp.swapaxes(angles[..., ::landmark_every], 1, 2), hand)
            outputs["landmarks"] = (
                hand_model_to_mediapipe(landmarks, hand) if landmark_order == "mediapipe" else landmarks
            )
        if self.mano_head is not None:
            rngs = {"dropout": head_rng} if (train and head_rng is not None) else None
            outputs["mano_theta"] = self.mano_head.apply(
                {"params": variables["params"]["mano_head"]}, angles, train=train, rngs=rngs
            )
        new_stats = dict(variables.get("batch_stats", {}))
        new_stats["adapter"] = adapter_stats
        return outputs, new_stats
