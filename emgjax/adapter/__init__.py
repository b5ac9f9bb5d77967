"""Hardware adapters: MindRove (8 ch, 500 Hz) -> emg2pose input (16 ch, 2 kHz)."""

from emgjax.adapter.channel_adapter import (
    ADAPTER_KINDS,
    ChannelAdapter,
    ChannelAdapterConfig,
    fixed_adapter_matrix,
    ring_interpolation_matrix,
)
from emgjax.adapter.mano_head import AngleConverter, ManoHeadConfig
from emgjax.adapter.objectives import NAMED_OBJECTIVES, ObjectiveWeights, objective_weights
from emgjax.adapter.pipeline import AdapterPipeline, PipelineConfig, validate_pipeline, variant_config
from emgjax.adapter.upsampler import (
    UPSAMPLER_KINDS,
    FrequencyUpsampler,
    UpsamplerConfig,
    check_rates,
)

__all__ = [
    "ADAPTER_KINDS",
    "ChannelAdapter",
    "ChannelAdapterConfig",
    "fixed_adapter_matrix",
    "ring_interpolation_matrix",
    "UPSAMPLER_KINDS",
    "FrequencyUpsampler",
    "UpsamplerConfig",
    "check_rates",
    "AdapterPipeline",
    "PipelineConfig",
    "validate_pipeline",
    "variant_config",
    "AngleConverter",
    "ManoHeadConfig",
    "NAMED_OBJECTIVES",
    "ObjectiveWeights",
    "objective_weights",
]
