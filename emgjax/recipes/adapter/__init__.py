"""Training procedures of the hardware adapter: objectives, the two phases, the frozen-model training, the benchmark.

The adapter's model code (channel adapters, upsamplers, the pipeline) lives in `emgjax.models.adapter`.
"""
