"""PyTorch version of the direct joints model (Conv1D + LSTM), for the train-step benchmark only.

Same architecture and sizes as `emgjax.models.direct.DirectModel` with the
defaults of `DirectConfig` (the original v5 model, ~1.0 M parameters):

    emg (B, 8, T) -> [Conv1d(k5, same, no bias) -> BatchNorm1d -> ReLU -> MaxPool1d(2)] x 2
                  -> LSTM(128 -> 256, 2 layers, dropout 0.3) -> last step
                  -> Linear(256, 128) -> ReLU -> Dropout(0.3) -> Linear(128, 63) -> (B, 21, 3)

The convolutions have no bias, like the JAX model (BatchNorm right after
removes it), so both do the same arithmetic.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["TorchDirectModel", "count_params"]


class TorchDirectModel(nn.Module):
    """emg (B, in_channels, T) float32 -> joints (B, 21, 3) (mode "last")."""

    def __init__(
        self,
        in_channels: int = 8,
        conv_channels: Sequence[int] = (64, 128),
        kernel_size: int = 5,
        pool_size: int = 2,
        lstm_hidden: int = 256,
        lstm_layers: int = 2,
        dropout: float = 0.3,
        head_hidden: int = 128,
        out_shape: Sequence[int] = (21, 3),
    ):
        super().__init__()
        layers: list[nn.Module] = []
        width = in_channels
        for channels in conv_channels:
            layers += [
                nn.Conv1d(width, channels, kernel_size, padding="same", bias=False),
                nn.BatchNorm1d(channels),  # eps 1e-5, momentum 0.1: the JAX model's values
                nn.ReLU(),
                nn.MaxPool1d(pool_size),
            ]
            width = channels
        self.conv = nn.Sequential(*layers)
        self.lstm = nn.LSTM(
            width, lstm_hidden, lstm_layers, batch_first=True, dropout=dropout if lstm_layers > 1 else 0.0
        )
        self.out_shape = tuple(out_shape)
        outputs = 1
        for size in self.out_shape:
            outputs *= size
        self.head = nn.Sequential(
            nn.Linear(lstm_hidden, head_hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(head_hidden, outputs)
        )

    def forward(self, emg: torch.Tensor) -> torch.Tensor:
        if emg.ndim != 3 or emg.shape[1] != self.conv[0].in_channels:
            raise ValueError(f"emg: expected (batch, {self.conv[0].in_channels}, time), found {tuple(emg.shape)}")
        x = self.conv(emg).transpose(1, 2)  # (B, T', C)
        x, _ = self.lstm(x)
        return self.head(x[:, -1]).reshape(emg.shape[0], *self.out_shape)


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
