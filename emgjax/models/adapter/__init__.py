"""The hardware adapter's model code: MindRove (8 ch, 500 Hz) -> emg2pose input (16 ch, 2 kHz) -> frozen emg2pose.

Training procedures (objectives, phases, the frozen-model training, the benchmark) live in
`emgjax.recipes.adapter`.
"""

from emgjax.models.adapter.channel_adapter import (
    ADAPTER_KINDS,
    ChannelAdapter,
    ChannelAdapterConfig,
    fixed_adapter_matrix,
    ring_interpolation_matrix,
)
from emgjax.models.adapter.mano_head import AngleConverter, ManoHeadConfig
from emgjax.models.adapter.pipeline import (
    AdapterModelConfig,
    AdapterPipeline,
    PipelineConfig,
    validate_pipeline,
    variant_config,
)
from emgjax.models.adapter.upsampler import (
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
    "AdapterModelConfig",
    "PipelineConfig",
    "validate_pipeline",
    "variant_config",
    "AngleConverter",
    "ManoHeadConfig",
]
