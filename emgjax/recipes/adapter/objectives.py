"""Training objectives and reconstruction metrics of the hardware adapter.

Objectives (selectable and combinable with weights, ``ObjectiveWeights``):

(a) **reconstruction**: emg2pose-format EMG degraded to a simulated MindRove
    view (``emgjax.data.signal.simulate_mindrove_view``) is adapted back to
    16 ch / 2 kHz and compared with the original, in time (MSE) and in
    spectrum (distance of log-magnitude FFTs, ``spectral``);
(b) **downstream**: pose loss through the frozen emg2pose on angles (masked
    L1, emg2pose data) or on landmarks (MindRove data with MediaPipe landmark
    labels: FK of the predicted angles with a hand model, reordered to
    MediaPipe order, mean landmark distance in mm);
(c) the original project's **priors**: amplitude (per-channel mean 0 /
    std 1 of the adapted signal) and smoothness (mean squared first
    difference), each with weight 0.1 in the original.

The weights are a pytree of scalars, so a single compiled train step serves
every combination (the batch benchmark vmaps over them).

Metrics: ``snr_db``, ``band_snr_db`` (0-250 Hz vs 250-1000 Hz: what a 500 Hz
armband measures vs what an upsampler must invent) and
``channel_correlation`` (measured vs synthesised electrodes).

Arrays are channel-first: ``emg (B, C, T)``, ``angles (B, 20, T)``,
``mask (B, T)``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from emgjax.config import Config
from emgjax.kinematics import forward_kinematics
from emgjax.kinematics.mediapipe import hand_model_to_mediapipe
from emgjax.train.losses import angle_l1, masked_mean

__all__ = [
    "OBJECTIVE_TERMS",
    "NAMED_OBJECTIVES",
    "ObjectiveWeights",
    "objective_weights",
    "time_mse",
    "log_spectral_distance",
    "reconstruction_loss",
    "amplitude_prior",
    "smoothness_prior",
    "angle_pose_loss",
    "landmark_pose_loss",
    "landmark_distance_loss",
    "mano_theta_loss",
    "snr_db",
    "band_snr_db",
    "channel_correlation",
    "DEFAULT_BANDS_HZ",
]

OBJECTIVE_TERMS = ("reconstruction", "spectral", "pose", "landmarks", "mano", "amplitude_prior", "smoothness_prior")

# Below the MindRove Nyquist frequency the armband measured the signal; above it, nothing did.
DEFAULT_BANDS_HZ = ((0.0, 250.0), (250.0, 1000.0))


@dataclasses.dataclass(frozen=True)
class ObjectiveWeights(Config):
    """Weight of each objective term (0 turns a term off).

    reconstruction: time-domain MSE to the true 16 ch / 2 kHz EMG.
    spectral: log-magnitude FFT distance to the true EMG.
    pose: masked L1 of angles (radians) through the frozen emg2pose.
    landmarks: landmark distance (mm) through FK, MediaPipe order.
    mano: MSE of the Mode-2 head's MANO theta (sessions with theta labels).
    amplitude_prior, smoothness_prior: the original project's priors (0.1 there).
    """

    reconstruction: float = 0.0
    spectral: float = 0.0
    pose: float = 0.0
    landmarks: float = 0.0
    mano: float = 0.0
    amplitude_prior: float = 0.0
    smoothness_prior: float = 0.0

    def __post_init__(self):
        for name in OBJECTIVE_TERMS:
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not np.isfinite(value) or value < 0:
                raise ValueError(f"ObjectiveWeights.{name}: expected a finite number >= 0, found {value!r}")
        if not any(getattr(self, name) > 0 for name in OBJECTIVE_TERMS):
            raise ValueError("ObjectiveWeights: expected at least one positive weight, found all zero")

    @property
    def needs_reconstruction_target(self) -> bool:
        return self.reconstruction > 0 or self.spectral > 0

    def as_array_dict(self) -> dict[str, jax.Array]:
        """The weights as float32 scalars: a traced pytree, so one compiled step serves all combinations."""
        return {name: jnp.asarray(getattr(self, name), jnp.float32) for name in OBJECTIVE_TERMS}


# Named combinations used by the benchmark. "prior" adds the original's priors at weight 0.1.
NAMED_OBJECTIVES: dict[str, ObjectiveWeights] = {
    "recon": ObjectiveWeights(reconstruction=1.0, spectral=0.1),
    "pose": ObjectiveWeights(pose=1.0),
    "recon+pose": ObjectiveWeights(reconstruction=1.0, spectral=0.1, pose=1.0),
    "pose+prior": ObjectiveWeights(pose=1.0, amplitude_prior=0.1, smoothness_prior=0.1),
    # mm-valued: 0.01 puts 10 mm on the scale of 0.1 rad, as emg2pose weighs its fingertip term.
    "landmarks": ObjectiveWeights(landmarks=0.01),
}


def objective_weights(spec: str | ObjectiveWeights | Mapping[str, float]) -> ObjectiveWeights:
    """An ``ObjectiveWeights`` from a name in ``NAMED_OBJECTIVES``, a dict, or itself.

    A string may also be ``"term=w,term=w"``, e.g. ``"reconstruction=1,pose=0.5"``.
    """
    if isinstance(spec, ObjectiveWeights):
        return spec
    if isinstance(spec, Mapping):
        return ObjectiveWeights.from_dict(dict(spec))
    if not isinstance(spec, str):
        raise ValueError(
            f"objective: expected a name, 'term=weight,...' or ObjectiveWeights, found {type(spec).__name__}"
        )
    if spec in NAMED_OBJECTIVES:
        return NAMED_OBJECTIVES[spec]
    if "=" not in spec:
        raise ValueError(
            f"unknown objective {spec!r}; expected one of {sorted(NAMED_OBJECTIVES)} or 'term=weight,...' "
            f"with terms {list(OBJECTIVE_TERMS)}"
        )
    weights = {}
    for part in spec.split(","):
        name, _, value = part.partition("=")
        name = name.strip()
        if name not in OBJECTIVE_TERMS:
            raise ValueError(f"objective {spec!r}: unknown term {name!r}; expected one of {list(OBJECTIVE_TERMS)}")
        try:
            weights[name] = float(value)
        except ValueError:
            raise ValueError(f"objective {spec!r}: expected a number after {name}=, found {value!r}") from None
    return ObjectiveWeights(**weights)


# ----------------------------------------------------------------------------- reconstruction losses


def time_mse(pred: jax.Array, target: jax.Array) -> jax.Array:
    """Mean squared error. pred, target: (B, C, T) -> ()."""
    return jnp.mean(jnp.square(pred - target))


def log_spectral_distance(pred: jax.Array, target: jax.Array, eps: float = 1e-3) -> jax.Array:
    """Mean |log(|FFT(pred)| + eps) - log(|FFT(target)| + eps)| over channels and frequencies.

    pred, target: (B, C, T) -> (). The magnitudes are divided by sqrt(T) so
    ``eps`` means the same for any window length; eps keeps the log finite
    where the target has (almost) no energy.
    """
    scale = 1.0 / np.sqrt(pred.shape[-1])
    pred_mag = jnp.abs(jnp.fft.rfft(pred, axis=-1)) * scale
    target_mag = jnp.abs(jnp.fft.rfft(target, axis=-1)) * scale
    return jnp.mean(jnp.abs(jnp.log(pred_mag + eps) - jnp.log(target_mag + eps)))


def reconstruction_loss(
    pred: jax.Array, target: jax.Array, *, time_weight: float = 1.0, spectral_weight: float = 0.1
) -> jax.Array:
    """time_weight * MSE + spectral_weight * log-spectral distance. pred, target: (B, C, T) -> ()."""
    return time_weight * time_mse(pred, target) + spectral_weight * log_spectral_distance(pred, target)


def amplitude_prior(emg: jax.Array) -> jax.Array:
    """The original's amplitude prior: per-channel mean^2 + (std - 1)^2, averaged. emg: (B, C, T) -> ()."""
    mean = jnp.mean(emg, axis=(0, 2))
    std = jnp.sqrt(jnp.var(emg, axis=(0, 2)) + 1e-8)
    return jnp.mean(jnp.square(mean) + jnp.square(std - 1.0))


def smoothness_prior(emg: jax.Array) -> jax.Array:
    """The original's smoothness prior: mean squared first difference along time. emg: (B, C, T) -> ()."""
    return jnp.mean(jnp.square(jnp.diff(emg, axis=-1)))


# ----------------------------------------------------------------------------- downstream losses


def angle_pose_loss(pred: jax.Array, target: jax.Array, mask: jax.Array) -> jax.Array:
    """Masked L1 of joint angles (radians). pred, target: (B, 20, T); mask: (B, T) -> ()."""
    return angle_l1(pred, target, mask)


def landmark_pose_loss(
    pred_angles: jax.Array, target_landmarks: jax.Array, mask: jax.Array, hand, every: int = 40
) -> jax.Array:
    """Mean landmark distance (mm) of FK(pred) in MediaPipe order to MediaPipe landmark labels.

    pred_angles: (B, 20, T) radians; target_landmarks: (B, T // every rounded up, 21, 3) mm in
    MediaPipe order, labels at samples 0, every, 2*every, ... of the prediction window;
    mask: (B, T) bool (sampled at the same steps). The hand model's wrist is the origin of both.
    Returns ().
    """
    sampled = pred_angles[..., ::every]  # (B, 20, T')
    if target_landmarks.shape[1:] != (sampled.shape[-1], 21, 3) or target_landmarks.shape[0] != pred_angles.shape[0]:
        raise ValueError(
            f"target_landmarks: expected shape ({pred_angles.shape[0]}, {sampled.shape[-1]}, 21, 3) "
            f"(landmarks at every {every}th of {pred_angles.shape[-1]} samples), found {tuple(target_landmarks.shape)}"
        )
    landmarks = hand_model_to_mediapipe(forward_kinematics(jnp.swapaxes(sampled, 1, 2), hand), hand)
    return landmark_distance_loss(landmarks, target_landmarks, mask[:, ::every])


def landmark_distance_loss(pred_landmarks: jax.Array, target_landmarks: jax.Array, mask: jax.Array) -> jax.Array:
    """Masked mean Euclidean distance. landmarks: (B, L, 21, 3); mask: (B, L) bool -> ()."""
    diff = pred_landmarks - target_landmarks
    squared = jnp.sum(diff * diff, axis=-1)
    # sqrt with a finite (zero) gradient at exactly zero distance
    distance = jnp.where(squared > 0, jnp.sqrt(jnp.where(squared > 0, squared, 1.0)), 0.0)
    return masked_mean(distance, mask[..., None])


def mano_theta_loss(pred_theta: jax.Array, target_theta: jax.Array, mask: jax.Array) -> jax.Array:
    """Masked MSE of MANO theta. pred, target: (B, 45, T); mask: (B, T) bool (False: no theta label) -> ()."""
    return masked_mean(jnp.square(pred_theta - target_theta), mask[:, None, :])


# ----------------------------------------------------------------------------- reconstruction metrics (host)


def _check_pair(pred, target) -> tuple[np.ndarray, np.ndarray]:
    pred, target = np.asarray(pred, np.float64), np.asarray(target, np.float64)
    if pred.shape != target.shape or pred.ndim != 3:
        raise ValueError(
            f"expected pred and target of the same shape (batch, channels, time), found {pred.shape} and {target.shape}"
        )
    return pred, target


def snr_db(pred, target) -> float:
    """10 log10(signal power / error power) in dB over all samples. pred, target: (B, C, T)."""
    pred, target = _check_pair(pred, target)
    error = np.sum(np.square(pred - target))
    return float(10.0 * np.log10(np.sum(np.square(target)) / max(error, 1e-30)))


def band_snr_db(
    pred,
    target,
    sample_rate: float,
    bands: Sequence[tuple[float, float]] = DEFAULT_BANDS_HZ,
    nperseg: int = 256,
) -> list[float]:
    """SNR (dB) inside each frequency band [low, high) Hz, from Welch power spectra (``scipy.signal.welch``).

    pred, target: (B, C, T), the region to score only (e.g. emg2pose's output span, without its left context).
    Welch's method (Hann segments of ``nperseg`` samples, half overlap, averaged) keeps a strong band from
    leaking into a weak one, as a rectangular window over the whole signal would. A band holds the bins
    with low <= f < high (the last band also holds f == high, e.g. the Nyquist bin). Returns one SNR per band.
    """
    from scipy.signal import welch

    pred, target = _check_pair(pred, target)
    if sample_rate <= 0:
        raise ValueError(f"sample_rate: expected > 0 Hz, found {sample_rate}")
    segment = min(nperseg, target.shape[-1])
    freqs, target_power = welch(target, fs=sample_rate, nperseg=segment, axis=-1)
    _, error_power = welch(pred - target, fs=sample_rate, nperseg=segment, axis=-1)
    out = []
    for i, (low, high) in enumerate(bands):
        if not 0 <= low < high:
            raise ValueError(f"bands[{i}]: expected 0 <= low < high, found ({low}, {high})")
        last = i == len(bands) - 1
        select = (freqs >= low) & ((freqs <= high) if last else (freqs < high))
        signal = target_power[..., select].sum()
        error = error_power[..., select].sum()
        out.append(float(10.0 * np.log10(max(signal, 1e-30) / max(error, 1e-30))))
    return out


def channel_correlation(pred, target) -> np.ndarray:
    """Pearson correlation per channel over batch and time. pred, target: (B, C, T) -> (C,)."""
    pred, target = _check_pair(pred, target)
    p = np.moveaxis(pred, 1, 0).reshape(pred.shape[1], -1)
    t = np.moveaxis(target, 1, 0).reshape(target.shape[1], -1)
    p = p - p.mean(axis=1, keepdims=True)
    t = t - t.mean(axis=1, keepdims=True)
    denominator = np.sqrt(np.sum(p * p, axis=1) * np.sum(t * t, axis=1))
    return np.where(denominator > 0, np.sum(p * t, axis=1) / np.maximum(denominator, 1e-30), 0.0)
