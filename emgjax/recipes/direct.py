"""Train, evaluate and fine-tune the direct MindRove models (Conv1D + LSTM) as library functions.

    from emgjax.recipes.direct import DirectExperiment, train_direct, evaluate_direct
    from emgjax.recipes.common import SessionsConfig

    exp = DirectExperiment(out_dir="runs/direct", sessions=SessionsConfig(data_dir="data/synth"))
    run = train_direct(exp)                        # resumes if runs/direct holds checkpoints
    report = evaluate_direct("runs/direct", run.splits["test"])
    print(format_report(report))

Data path, in order (all decided at training time, saved in ``statistics.json``
and in the exported model ``OUT/model/`` (an `emgjax.bundle`: ``emgjax.load_model``
reads it, its ``predict`` applies the filter and z-score to raw EMG), so evaluation
and inference repeat it exactly):

1. each whole session's EMG (8, N) is filtered offline (notch + band-pass,
   zero-phase; whole sessions avoid the edge effects of filtering 50-sample
   windows), then z-scored per channel with statistics computed **once on the
   training sessions** (never per window: that was a shipped bug of the
   original project);
2. windows of ``window_length`` samples every ``stride`` samples; the target
   is the landmarks (mm, MediaPipe order) at the window's last sample
   (mode "last") or at every LSTM step (mode "sequence", the first
   ``warmup_steps`` steps unscored because the LSTM starts from zeros);
3. targets are optionally centred on the wrist (root-relative pose, as
   MPJPE is usually reported), then standardised with the training mean pose
   and one scale (mm): the network predicts ``(pose - mean) / scale``, so
   predicting the mean pose is the zero output and the loss's ``scale``
   turns errors back into mm (the "joint_distance" metric *is* MPJPE in mm).

Evaluation compares the model with the honest baseline "predict the mean
training pose" on held-out sessions: MPJPE, PA-MPJPE, per finger and per
landmark, plus plots of predicted vs true trajectories.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from emgjax.config import config_to_dict
from emgjax.models.direct import DirectConfig, DirectModel
from emgjax.recipes.common import (
    LoopConfig,
    SessionsConfig,
    check_batch_size,
    is_main_process,
    prepare_run_dir,
    read_json,
    resolve_sessions,
    run_fit,
    run_length,
    sync_processes,
    write_json,
)
from emgjax.train import losses
from emgjax.train.optim import OptimConfig

__all__ = [
    "DirectDataConfig",
    "DirectExperiment",
    "FinetuneExperiment",
    "DirectRun",
    "DirectEvaluation",
    "train_direct",
    "evaluate_direct",
    "finetune_direct",
    "load_direct",
    "format_report",
    "FINGER_LANDMARKS",
    "direct_info",
]

# The training-set statistics of a run (computed once, reused on resume); the model itself is OUT/model/.
STATISTICS_FILE = "statistics.json"
WRIST = 0
# MediaPipe landmark groups: wrist, then 4 per finger (thumb CMC..TIP, others MCP..TIP).
FINGER_LANDMARKS: dict[str, tuple[int, ...]] = {
    "wrist": (0,),
    "thumb": (1, 2, 3, 4),
    "index": (5, 6, 7, 8),
    "middle": (9, 10, 11, 12),
    "ring": (13, 14, 15, 16),
    "pinky": (17, 18, 19, 20),
}
_TARGET_FOR_OUTPUT = {"joints": "landmarks", "mano": "mano_theta", "angles": "joint_angles"}


# =============================================================================
# configs
# =============================================================================


@dataclasses.dataclass(frozen=True)
class DirectDataConfig:
    """How sessions become (EMG window, target) pairs.

    - ``window_length``/``stride``: training windows in EMG samples (the
      original: 50 / 25 at 500 Hz); ``eval_stride`` for evaluation windows.
    - ``warmup_steps``: mode "sequence" only: LSTM steps at the start of each
      window that are not scored (the LSTM starts from a zero state there).
    - ``centre_on_wrist``: landmarks relative to the wrist (root-relative).
    - ``notch_hz``, ``band_hz``: the offline pre-filter (None turns a part off).
    - ``min_confidence``: label frames at or below this detector score are invalid.
    - ``rotate_channels``: augment by rotating the band by -1/0/+1 electrode.
    """

    window_length: int = 50
    stride: int = 25
    eval_stride: int = 25
    warmup_steps: int = 0
    centre_on_wrist: bool = True
    notch_hz: float | None = 60.0
    band_hz: tuple[float, float] | None = (20.0, 200.0)
    min_confidence: float = 0.5
    rotate_channels: bool = False

    def __post_init__(self):
        for name in ("window_length", "stride", "eval_stride"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"DirectDataConfig.{name}: expected a positive integer, found {value!r}")
        if self.warmup_steps < 0:
            raise ValueError(f"DirectDataConfig.warmup_steps: expected >= 0, found {self.warmup_steps}")


@dataclasses.dataclass(frozen=True)
class DirectExperiment:
    """Train a direct model on MindRove-format sessions (defaults: the original v5 joints model)."""

    out_dir: str = "runs/direct_joints"
    sessions: SessionsConfig = SessionsConfig()
    data: DirectDataConfig = DirectDataConfig()
    model: DirectConfig = DirectConfig()
    # The original: Adam, 1e-3 then 5e-4, batch 64, 100 epochs, MSE loss.
    optim: OptimConfig = OptimConfig(learning_rate=1e-3, schedule="step", decay_steps=20_000, decay_rate=0.5)
    loop: LoopConfig = LoopConfig(batch_size=64, num_epochs=100, early_stopping_patience=10)


@dataclasses.dataclass(frozen=True)
class FinetuneExperiment:
    """Adapt a trained direct model to a new user from a few minutes of calibration data.

    The backbone (convolutions, BatchNorm scales, LSTM) is frozen and only
    the head trains, optionally with the last LSTM layer. Calibration uses the
    first ``calibration_seconds`` of each ``sessions.train`` session;
    evaluation runs on ``sessions.test`` (before and after), or, without test
    sessions, on the rest of the calibration sessions.
    ``adapt_batch_norm``: re-estimate BatchNorm running statistics on the
    calibration data (the parameters stay frozen either way).
    ``renormalise``: z-score with statistics of the calibration data instead
    of the pretrained model's.
    """

    pretrained_dir: str = "runs/direct_joints"
    out_dir: str = "runs/direct_finetuned"
    sessions: SessionsConfig = SessionsConfig()
    calibration_seconds: float = 180.0
    train_last_lstm_layer: bool = False
    adapt_batch_norm: bool = True
    renormalise: bool = False
    stride: int = 25
    optim: OptimConfig = OptimConfig(learning_rate=1e-3)
    loop: LoopConfig = LoopConfig(batch_size=64, num_epochs=20, checkpoint_every_steps=200)

    def __post_init__(self):
        if not self.calibration_seconds > 0:
            raise ValueError(
                f"FinetuneExperiment.calibration_seconds: expected > 0, found {self.calibration_seconds!r}"
            )
        if self.stride < 1:
            raise ValueError(f"FinetuneExperiment.stride: expected a positive integer, found {self.stride!r}")


# =============================================================================
# data
# =============================================================================


@functools.lru_cache(maxsize=16)
def _sos(sample_rate: float, notch_hz: float | None, band_hz: tuple[float, float] | None) -> np.ndarray | None:
    from emgjax.data.signal import design_emg_filter

    if notch_hz is None and band_hz is None:
        return None
    return design_emg_filter(sample_rate, notch_hz=notch_hz, band=band_hz)


@dataclasses.dataclass(frozen=True)
class _SessionPreprocess:
    """Whole-session filter then z-score with training statistics: (8, N) -> (8, N) float32."""

    notch_hz: float | None
    band_hz: tuple[float, float] | None
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None

    def filter(self, emg: np.ndarray, sample_rate: float) -> np.ndarray:
        from emgjax.data.signal import filter_offline

        sos = _sos(float(sample_rate), self.notch_hz, self.band_hz)
        return emg if sos is None else filter_offline(emg, sos, axis=-1)

    def __call__(self, emg: np.ndarray, sample_rate: float) -> np.ndarray:
        emg = self.filter(np.asarray(emg, np.float64), sample_rate)
        if self.mean is not None:
            emg = (emg - np.asarray(self.mean)[:, None]) / np.asarray(self.std)[:, None]
        return emg.astype(np.float32)


def _norm_stats(paths: Sequence[Path], preprocess: _SessionPreprocess):
    """Global per-channel statistics of the filtered EMG of the training sessions."""
    from emgjax.data.mindrove import MindRoveSession
    from emgjax.data.signal import compute_norm_stats

    def filtered():
        for path in paths:
            with MindRoveSession(path) as session:
                yield preprocess.filter(session.read_emg().astype(np.float64), session.sample_rate)

    return compute_norm_stats(filtered())


def _session_rate(paths: Sequence[Path]) -> float:
    from emgjax.data.mindrove import MindRoveSession

    rates = {}
    for path in paths:
        with MindRoveSession(path) as session:
            rates[str(path)] = session.sample_rate
    if len(set(rates.values())) != 1:
        raise ValueError(f"training sessions: expected one EMG sample rate, found {rates}")
    return next(iter(rates.values()))


def _centre(poses: np.ndarray, centre_on_wrist: bool) -> np.ndarray:
    """(..., 21, 3) landmarks, optionally relative to the wrist."""
    return poses - poses[..., WRIST : WRIST + 1, :] if centre_on_wrist else poses


def _target_stats(paths: Sequence[Path], kind: str, data: DirectDataConfig) -> dict:
    """Mean target and one scale over the valid label frames of the training sessions."""
    from emgjax.data.mindrove import MindRoveSession

    values = []
    for path in paths:
        with MindRoveSession(path) as session:
            stream = session.label_stream(kind, min_confidence=data.min_confidence)
        good = stream.values[stream.frame_ok].astype(np.float64)
        values.append(_centre(good, data.centre_on_wrist) if kind == "landmarks" else good)
    values = np.concatenate(values)
    if values.shape[0] < 2:
        raise ValueError(f"training sessions: expected at least 2 valid '{kind}' label frames, found {values.shape[0]}")
    mean = values.mean(axis=0)
    scale = float(np.sqrt(np.mean((values - mean) ** 2)))
    if not scale > 0:
        raise ValueError(f"training sessions: the '{kind}' targets never vary (std 0); nothing to learn")
    return {"kind": kind, "centre_on_wrist": bool(data.centre_on_wrist), "mean": mean.tolist(), "scale": scale}


class _Windows:
    """MindRove windows with prepared targets, over a subset of the windows.

    Items: ``emg (8, T)`` float32; ``target`` standardised, (21, 3) / (45,)
    for mode "last" or (21, 3, T') / (45, T') for "sequence" (one per LSTM
    step, at ``sequence_sample_index``); ``valid`` () or (T',) bool.
    """

    def __init__(
        self, windows, model: DirectConfig, target: dict, warmup_steps: int, indices: np.ndarray | None = None
    ):
        from emgjax.models.direct import output_steps, sequence_sample_index

        self.windows = windows
        self.indices = np.arange(len(windows)) if indices is None else np.asarray(indices, np.int64)
        self.mode = model.mode
        self.mean = np.asarray(target["mean"], np.float32)
        self.scale = np.float32(target["scale"])
        self.centre = bool(target["centre_on_wrist"]) and target["kind"] == "landmarks"
        steps = output_steps(windows.window_length, model)
        self.step_index = sequence_sample_index(steps, model)
        self.step_valid = np.arange(steps) >= warmup_steps
        if self.mode == "sequence" and not self.step_valid.any():
            raise ValueError(
                f"data.warmup_steps: expected fewer than the {steps} LSTM steps of a {windows.window_length}-sample "
                f"window, found {warmup_steps}"
            )

    @property
    def needs_rng(self) -> bool:
        return self.windows.needs_rng

    def __len__(self) -> int:
        return int(self.indices.shape[0])

    def standardise(self, target: np.ndarray) -> np.ndarray:
        target = _centre(target, True) if self.centre else target
        return ((target - self.mean) / self.scale).astype(np.float32)

    def window_bounds(self, index: int):
        return self.windows.window_bounds(int(self.indices[index]))

    def __getitem__(self, index: int, rng: np.random.Generator | None = None) -> dict[str, np.ndarray]:
        item = self.windows.__getitem__(int(self.indices[index]), rng=rng)
        if self.mode == "last":
            return {"emg": item["emg"], "target": self.standardise(item["target"]), "valid": np.bool_(item["valid"])}
        target = self.standardise(item["target"][self.step_index])  # (T', *pose)
        valid = item["valid"][self.step_index] & self.step_valid
        return {"emg": item["emg"], "target": np.moveaxis(target, 0, -1), "valid": valid}


def _make_windows(paths, info: dict, *, stride: int, transforms=(), rate: float | None = None):
    from emgjax.data.windows import MindRoveWindows

    data = info["data"]
    norm = info["normalisation"]
    preprocess = _SessionPreprocess(
        data["notch_hz"],
        None if data["band_hz"] is None else tuple(data["band_hz"]),
        tuple(norm["mean"]),
        tuple(norm["std"]),
    )
    model = DirectConfig.from_dict(info["model"])
    windows = MindRoveWindows(
        [str(p) for p in paths],
        window_length=data["window_length"],
        stride=stride,
        target=info["target"]["kind"],
        mode="last" if model.mode == "last" else "sequence",
        session_filter=preprocess,
        transforms=transforms,
        min_confidence=data["min_confidence"],
        expected_sample_rate=info["sample_rate"] if rate is None else rate,
    )
    return _Windows(windows, model, info["target"], data["warmup_steps"])


# =============================================================================
# the exported model (an emgjax.bundle of kind "direct")
# =============================================================================


def _model_info(model: DirectConfig, data: DirectDataConfig, norm, target: dict, sample_rate: float, **extra) -> dict:
    """The run's statistics and data settings (``statistics.json``; the bundle carries them too)."""
    return {
        "model": model.to_dict(),
        "data": {
            "window_length": data.window_length,
            "eval_stride": data.eval_stride,
            "warmup_steps": data.warmup_steps,
            "notch_hz": data.notch_hz,
            "band_hz": None if data.band_hz is None else list(data.band_hz),
            "min_confidence": data.min_confidence,
        },
        "sample_rate": float(sample_rate),
        "normalisation": norm.to_dict(),
        "target": target,
        **extra,
    }


def _export(directory: Path, config: DirectConfig, variables: dict, info: dict, step: int) -> Path:
    """Write the model as an `emgjax.bundle` (kind "direct") carrying ``info``'s preprocessing and targets."""
    from emgjax.bundle import direct_specs, save_model

    data = info["data"]
    input_spec, output_spec = direct_specs(
        config,
        info["sample_rate"],
        notch_hz=data["notch_hz"],
        band_hz=None if data["band_hz"] is None else tuple(data["band_hz"]),
        normalisation=info["normalisation"],
        target=info["target"],
    )
    skip = ("model", "sample_rate", "normalisation", "target")
    metadata = {k: v for k, v in info.items() if k not in skip}
    metadata.update(exported_step=step, source={"trained_by": "emgjax.recipes.direct"})
    return save_model(
        directory, "direct", config, variables, input_spec=input_spec, output_spec=output_spec, metadata=metadata
    )


def direct_info(model) -> dict:
    """The recipe's description of a loaded direct model: model, data, sample_rate, normalisation, target, ..."""
    post = model.output_spec.postprocessing
    if "data" not in model.metadata or not post:
        raise ValueError(
            f"{model.path}: expected a direct model trained by emgjax.recipes.direct (with its data settings "
            "and target statistics), found one without them"
        )
    return {
        **model.metadata,
        "model": model.config.to_dict(),
        "sample_rate": model.input_spec.sample_rate,
        "normalisation": model.input_spec.preprocessing.normalisation,
        "target": dict(post),
    }


def load_direct(run_dir: str | Path):
    """The direct `emgjax.bundle.Model` a run exported (``run_dir/model``, or a model directory itself)."""
    from emgjax.bundle import load_model, resolve_model_dir

    return load_model(resolve_model_dir(run_dir), kind="direct")


# =============================================================================
# training
# =============================================================================


@dataclasses.dataclass
class DirectRun:
    """What ``train_direct`` / ``finetune_direct`` return."""

    out_dir: Path
    splits: dict[str, list[Path]]
    history: list[dict]
    resumed_from_step: int | None
    steps: int
    train_seconds: float
    model: Any  # the exported emgjax.bundle.Model


@functools.lru_cache(maxsize=8)
def make_direct_loss_fn(
    model: DirectModel,
    *,
    scale: float = 1.0,
    axis_name: str | None = "data",
):
    """The training task of a direct model, in the train-step interface.

    Returns ``loss_fn(params, batch_stats, batch, rng, train) ->
    (loss, (metrics, new_batch_stats))`` for batches
    ``{"emg": (B, C, T), "target": pose, "valid": mask}`` where, for mode
    "last", pose is (B, 21, 3) / (B, 45) / (B, 20) and mask (B,); for mode "sequence",
    pose is (B, 21, 3, T') / (B, 45, T') / (B, 20, T') and mask (B, T') (targets picked at
    ``sequence_sample_index``). ``valid`` may be omitted (all valid).

    The loss is the masked MSE of (pred - target) x ``scale`` (the original
    objective; ``scale=1000`` for metre targets gives mm^2). Metrics: "loss",
    and for joints "joint_distance" (mean per-joint Euclidean error, in
    target units x scale, i.e. MPJPE). ``axis_name`` must match the train
    step's axis (None outside a mapped axis); give the model the same
    ``bn_axis_name`` for exact data-parallel BatchNorm.
    """
    cfg = model.config

    def loss_fn(params, batch_stats, batch, rng, train: bool):
        emg, target = batch["emg"], batch["target"]
        variables = {"params": params, "batch_stats": batch_stats}
        if train:
            (pred, _), updates = model.apply(variables, emg, train=True, rngs={"dropout": rng}, mutable=["batch_stats"])
            new_batch_stats = updates["batch_stats"]
        else:
            pred, _ = model.apply(variables, emg, train=False)
            new_batch_stats = batch_stats
        if target.shape != pred.shape:
            raise ValueError(f"direct model target: expected shape {tuple(pred.shape)}, found {tuple(target.shape)}")
        valid = batch.get("valid")
        expected_mask = pred.shape[:1] if cfg.mode == "last" else (pred.shape[0], pred.shape[-1])
        if valid is not None and tuple(valid.shape) != expected_mask:
            raise ValueError(f"direct model valid: expected shape {expected_mask}, found {tuple(valid.shape)}")
        if cfg.mode == "sequence":  # time next to batch: (B, T', *pose)
            pred, target = jnp.moveaxis(pred, -1, 1), jnp.moveaxis(target, -1, 1)
        metrics = {}
        if cfg.output == "joints":
            loss = losses.joint_mse(pred, target, valid, scale=scale, axis_name=axis_name)
            metrics["joint_distance"] = losses.joint_distance(
                jax.lax.stop_gradient(pred), target, valid, scale=scale, axis_name=axis_name
            )
        else:
            mask = None if valid is None else valid[..., None]
            loss = losses.masked_mean(jnp.square((pred - target) * scale), mask, axis_name=axis_name)
        metrics["loss"] = loss
        return loss, (metrics, new_batch_stats)

    return loss_fn


def _init_fn(config: DirectConfig, num_samples: int):
    """Jitted ``key -> variables`` for windows of ``num_samples``, cached: reruns in one process skip the compile."""
    import jax
    import jax.numpy as jnp

    from emgjax.models.direct import DirectModel

    emg = jnp.zeros((1, config.in_channels, num_samples), jnp.float32)
    model = DirectModel(config)
    return jax.jit(lambda key: model.init({"params": key}, emg, train=False))


def _init_variables(config: DirectConfig, num_samples: int, seed: int) -> dict:
    """Fresh ``{"params", "batch_stats"}`` from ``seed``.

    The key uses XLA's RngBitGenerator ("rbg") rather than threefry: the same
    initialiser distributions, but the init program compiles in ~5 s instead
    of ~13 s on a 2-core CPU, which is most of a short run's start-up.
    """
    import jax

    return dict(_init_fn(config, num_samples)(jax.random.key(seed, impl="rbg")))


@functools.lru_cache(maxsize=8)
def _training_functions(
    model_cfg: DirectConfig,
    num_samples: int,
    target_scale: float,
    optim: OptimConfig,
    train_last_lstm_layer: bool | None,
    keep_batch_stats: bool,
    total_steps: int | None = None,
):
    """(loss_fn, optimizer), cached by their settings so the jitted steps built on them are reused.

    ``train_last_lstm_layer`` None trains everything; a bool freezes the
    backbone (see ``_backbone_frozen_predicate``).
    """
    import jax

    from emgjax.models.direct import DirectModel
    from emgjax.train import make_optimizer

    # bn_axis_name: BatchNorm statistics over the global batch, exactly as on one device.
    loss_fn = make_direct_loss_fn(DirectModel(model_cfg, bn_axis_name="data"), scale=target_scale, axis_name="data")
    if keep_batch_stats:
        inner = loss_fn

        def loss_fn(params, batch_stats, batch, rng, train):
            loss, (metrics, _) = inner(params, batch_stats, batch, rng, train)
            return loss, (metrics, batch_stats)

    if train_last_lstm_layer is None:
        return loss_fn, make_optimizer(optim, total_steps=total_steps)
    params = jax.eval_shape(lambda: _init_variables(model_cfg, num_samples, 0))["params"]
    trainable = _backbone_frozen_predicate(model_cfg.lstm_layers, train_last_lstm_layer)
    return loss_fn, make_optimizer(optim, params, trainable=trainable, total_steps=total_steps)


def _setup_training(
    model_cfg: DirectConfig,
    num_samples: int,
    target_scale: float,
    optim: OptimConfig,
    variables,
    seed: int,
    train_last_lstm_layer: bool | None = None,
    keep_batch_stats: bool = False,
    total_steps: int | None = None,
):
    import jax

    from emgjax.train import create_train_state, make_data_mesh, replicate

    mesh = make_data_mesh()
    loss_fn, optimizer = _training_functions(
        model_cfg, num_samples, float(target_scale), optim, train_last_lstm_layer, keep_batch_stats, total_steps
    )
    state = create_train_state(variables["params"], optimizer, jax.random.key(seed), variables.get("batch_stats", {}))
    return mesh, loss_fn, optimizer, replicate(state, mesh)


def _check_model_data(model: DirectConfig, data_window: int) -> None:
    if data_window < model.time_stride:
        raise ValueError(
            f"data.window_length: expected at least {model.time_stride} samples (one LSTM step), found {data_window}"
        )


def train_direct(exp: DirectExperiment, *, verbose: bool = True) -> DirectRun:
    """Train ``exp`` (resuming from ``exp.out_dir`` if it holds checkpoints) and export the model.

    Normalisation and target statistics come from the training sessions only
    and are saved in ``statistics.json``, in every checkpoint's extras and in the model. The
    exported weights are the best validation checkpoint when there is a val
    split, else the last state.
    """
    import jax

    out = prepare_run_dir(exp.out_dir, exp)
    splits = resolve_sessions(exp.sessions, "mindrove")
    if not splits["train"]:
        raise ValueError("sessions: expected at least one training session, found none")
    kind = _TARGET_FOR_OUTPUT[exp.model.output]
    _check_model_data(exp.model, exp.data.window_length)
    check_batch_size(exp.loop)
    rate = _session_rate(splits["train"])
    statistics = out / STATISTICS_FILE
    if statistics.exists() and (out / "checkpoints").is_dir():
        # A rerun resumes: reuse the saved statistics (identical by construction, and cheaper).
        info = read_json(statistics, f"direct run statistics ({STATISTICS_FILE})")
    else:
        preprocess = _SessionPreprocess(exp.data.notch_hz, exp.data.band_hz)
        norm = _norm_stats(splits["train"], preprocess)
        target = _target_stats(splits["train"], kind, exp.data)
        info = _model_info(exp.model, exp.data, norm, target, rate, trained_on=[str(p) for p in splits["train"]])
        write_json(statistics, info)
    transforms = ()
    if exp.data.rotate_channels:
        from emgjax.data.windows import RandomChannelRotation

        transforms = (RandomChannelRotation(),)
    train_ds = _make_windows(splits["train"], info, stride=exp.data.stride, transforms=transforms)
    val_ds = _make_windows(splits["val"], info, stride=exp.data.eval_stride) if splits["val"] else None

    variables = _init_variables(exp.model, exp.data.window_length, exp.loop.seed)
    mesh, loss_fn, optimizer, state = _setup_training(
        exp.model,
        exp.data.window_length,
        info["target"]["scale"],
        exp.optim,
        variables,
        exp.loop.seed + 1,
        total_steps=run_length(exp.loop, train_ds, val_ds),
    )
    result, seconds = _fit_and_export(
        out,
        exp,
        info,
        state=state,
        loss_fn=loss_fn,
        optimizer=optimizer,
        mesh=mesh,
        train_ds=train_ds,
        val_ds=val_ds,
        verbose=verbose,
    )
    return DirectRun(
        out,
        splits,
        result.history,
        result.resumed_from_step,
        int(jax.device_get(result.state.step)),
        seconds,
        load_direct(out),
    )


def _fit_and_export(out: Path, exp, info: dict, *, state, loss_fn, optimizer, mesh, train_ds, val_ds, verbose):
    """Train (resuming if checkpoints exist) and export the best variables as ``out/model`` (a bundle).

    Returns (FitResult, training seconds).
    """
    import jax

    extra = {"normalisation": info["normalisation"], "target": info["target"], "config": config_to_dict(exp)}
    started = time.perf_counter()
    result, best = run_fit(
        out,
        state=state,
        loss_fn=loss_fn,
        optimizer=optimizer,
        mesh=mesh,
        train_dataset=train_ds,
        val_dataset=val_ds,
        loop=exp.loop,
        extra=extra,
        verbose=verbose,
    )
    seconds = time.perf_counter() - started
    variables = {"params": best.params, "batch_stats": best.batch_stats}
    if is_main_process():  # one writer; the other processes wait, then read it (evaluation)
        _export(out / "model", DirectConfig.from_dict(info["model"]), variables, info, int(jax.device_get(best.step)))
    sync_processes("emgjax: model exported")
    return result, seconds


def _backbone_frozen_predicate(num_lstm_layers: int, train_last_lstm_layer: bool):
    """Trainable = the head (``head_*``), plus the last LSTM layer if asked."""
    last = f"layer_{num_lstm_layers - 1}"

    def trainable(path: tuple[str, ...], leaf) -> bool:
        if path[0].startswith("head"):
            return True
        return train_last_lstm_layer and path[:2] == ("lstm", last)

    return trainable


def finetune_direct(exp: FinetuneExperiment, *, verbose: bool = True) -> tuple[DirectRun, dict]:
    """Fine-tune ``exp.pretrained_dir`` for a new user; returns ``(run, {"before": eval, "after": eval})``.

    Frozen parameters receive exactly zero updates (they stay bitwise equal);
    the optimiser keeps no moments for them. The evaluations are
    ``DirectEvaluation``s on the held-out data (see ``FinetuneExperiment``).
    """
    import jax

    if Path(exp.out_dir).resolve() == Path(exp.pretrained_dir).resolve():
        raise ValueError(f"out_dir: expected a directory other than the pretrained model's, found {exp.out_dir}")
    pretrained = load_direct(exp.pretrained_dir)
    out = prepare_run_dir(exp.out_dir, exp)
    check_batch_size(exp.loop)
    splits = resolve_sessions(exp.sessions, "mindrove")
    if not splits["train"]:
        raise ValueError("sessions: expected calibration sessions in the train split, found none")
    info = direct_info(pretrained)
    if exp.renormalise:
        data = info["data"]
        preprocess = _SessionPreprocess(data["notch_hz"], None if data["band_hz"] is None else tuple(data["band_hz"]))
        info["normalisation"] = _norm_stats(splits["train"], preprocess).to_dict()
    all_windows = _make_windows(splits["train"], info, stride=exp.stride)
    rate = float(info["sample_rate"])
    limit = round(exp.calibration_seconds * rate)
    stops = np.array([all_windows.window_bounds(i)[2] for i in range(len(all_windows))])
    calibration = _Windows(
        all_windows.windows,
        pretrained.config,
        info["target"],
        info["data"]["warmup_steps"],
        np.flatnonzero(stops <= limit),
    )
    if len(calibration) < exp.loop.batch_size:
        raise ValueError(
            f"calibration: expected at least one batch ({exp.loop.batch_size} windows) in the first "
            f"{exp.calibration_seconds:g} s of the calibration sessions, found {len(calibration)}"
        )
    if splits["test"]:
        held_out = {"sessions": splits["test"]}
    else:
        held_out = {"sessions": splits["train"], "after_seconds": exp.calibration_seconds}
    val_ds = _make_windows(splits["val"], info, stride=info["data"]["eval_stride"]) if splits["val"] else None

    mesh, loss_fn, optimizer, state = _setup_training(
        pretrained.config,
        info["data"]["window_length"],
        info["target"]["scale"],
        exp.optim,
        pretrained.variables,
        exp.loop.seed + 1,
        train_last_lstm_layer=exp.train_last_lstm_layer,
        keep_batch_stats=not exp.adapt_batch_norm,
        total_steps=run_length(exp.loop, calibration, val_ds),
    )
    info = {
        **info,
        "finetuned_from": str(Path(exp.pretrained_dir).resolve()),
        "finetune": {
            "calibration_seconds": exp.calibration_seconds,
            "train_last_lstm_layer": exp.train_last_lstm_layer,
            "adapt_batch_norm": exp.adapt_batch_norm,
            "renormalise": exp.renormalise,
            "calibration_sessions": [str(p) for p in splits["train"]],
        },
    }
    write_json(out / STATISTICS_FILE, info)
    result, seconds = _fit_and_export(
        out,
        exp,
        info,
        state=state,
        loss_fn=loss_fn,
        optimizer=optimizer,
        mesh=mesh,
        train_ds=calibration,
        val_ds=val_ds,
        verbose=verbose,
    )
    run = DirectRun(
        out,
        splits,
        result.history,
        result.resumed_from_step,
        int(jax.device_get(result.state.step)),
        seconds,
        load_direct(out),
    )
    before = evaluate_direct(exp.pretrained_dir, **held_out)
    after = evaluate_direct(out, **held_out)
    write_json(out / "finetune_evaluation.json", {"before": before.summary(), "after": after.summary()})
    return run, {"before": before, "after": after}


# =============================================================================
# evaluation
# =============================================================================


@dataclasses.dataclass
class DirectEvaluation:
    """Held-out evaluation of a direct model against the predict-the-mean baseline.

    ``model`` / ``baseline``: metric dicts (joints: "mpjpe_mm", "pa_mpjpe_mm",
    "mpjpe_<finger>_mm"; MANO: "mae_rad", "mae_deg"). ``per_landmark_mm``:
    {"model": (21,), "baseline": (21,)} for joints. ``frames``: scored
    poses. ``pred``, ``true``: (N, *pose) in target units, ``times`` (N,)
    seconds from each frame's session start, ``session_index`` (N,).
    """

    sessions: list[Path]
    frames: int
    model: dict[str, float]
    baseline: dict[str, float]
    per_landmark_mm: dict[str, list[float]] | None
    pred: np.ndarray
    true: np.ndarray
    times: np.ndarray
    session_index: np.ndarray
    pngs: list[Path] = dataclasses.field(default_factory=list)

    def summary(self) -> dict:
        return {
            "sessions": [str(p) for p in self.sessions],
            "frames": self.frames,
            "model": self.model,
            "baseline": self.baseline,
            "per_landmark_mm": self.per_landmark_mm,
            "pngs": [str(p) for p in self.pngs],
        }


def _joint_metrics(pred: np.ndarray, true: np.ndarray) -> tuple[dict[str, float], list[float]]:
    from emgjax.metrics import mpjpe, pa_mpjpe

    distances = np.linalg.norm(pred - true, axis=-1)  # (N, 21)
    metrics = {"mpjpe_mm": float(mpjpe(pred, true)), "pa_mpjpe_mm": float(pa_mpjpe(pred, true))}
    for finger, landmarks in FINGER_LANDMARKS.items():
        metrics[f"mpjpe_{finger}_mm"] = float(distances[:, list(landmarks)].mean())
    return metrics, distances.mean(axis=0).tolist()


def evaluate_direct(
    run_dir: str | Path,
    sessions: Sequence[str | Path],
    *,
    after_seconds: float | None = None,
    normalisation: dict | None = None,
    plot_dir: str | Path | None = None,
    batch_size: int = 256,
) -> DirectEvaluation:
    """Evaluate the model in ``run_dir`` on ``sessions`` (held out from its training).

    Windows every ``eval_stride`` samples; the baseline predicts the mean
    training pose (saved with the model) for every frame. ``after_seconds``
    scores only windows starting after that time (the held-out remainder of
    calibration sessions). ``normalisation`` overrides the saved statistics
    (a NormStats dict). ``plot_dir`` saves ``trajectories.png`` (first
    session: predicted vs true coordinates of three fingertips).
    """
    loaded = load_direct(run_dir)
    info = direct_info(loaded)
    if normalisation is not None:
        info["normalisation"] = normalisation
    sessions = [Path(p) for p in sessions]
    if not sessions:
        raise ValueError("evaluate_direct: expected at least one held-out session, found none")
    data = _make_windows(sessions, info, stride=info["data"]["eval_stride"])
    rate = float(info["sample_rate"])
    bounds = [data.window_bounds(i) for i in range(len(data))]
    keep = np.arange(len(data))
    if after_seconds is not None:
        keep = np.flatnonzero(np.array([start for _, start, _ in bounds]) >= round(after_seconds * rate))
        if keep.size == 0:
            raise ValueError(f"evaluate_direct: no window starts after {after_seconds:g} s in {sessions}")
    session_of = {str(p): i for i, p in enumerate(data.windows.sessions)}
    emg, target, valid, times, owner = [], [], [], [], []
    step_times = (data.step_index + 1) / rate if loaded.config.mode == "sequence" else None
    for i in keep:
        item = data[int(i)]
        path, start, stop = bounds[i]
        emg.append(item["emg"])
        target.append(item["target"])
        valid.append(item["valid"])
        if step_times is None:
            times.append(stop / rate)
            owner.append(session_of[str(path)])
        else:
            times.append(start / rate + step_times)
            owner.append(np.full(step_times.shape, session_of[str(path)]))
    emg = np.stack(emg)
    pred = loaded.predict(emg, preprocessed=True, batch_size=batch_size)
    t = info["target"]
    true = np.stack(target)
    valid = np.stack(valid)
    if loaded.config.mode == "sequence":
        true = np.moveaxis(true, -1, 1)  # (B, T', *pose)
        pred, true, valid = pred.reshape(-1, *pred.shape[2:]), true.reshape(-1, *true.shape[2:]), valid.reshape(-1)
        times, owner = np.concatenate(times), np.concatenate(owner)
    else:
        times, owner = np.asarray(times), np.asarray(owner)
    true = true * t["scale"] + np.asarray(t["mean"], np.float32)
    pred, true, times, owner = pred[valid], true[valid], times[valid], owner[valid]
    if pred.shape[0] == 0:
        raise ValueError(f"evaluate_direct: no valid labelled frame in {sessions}")
    mean_pose = np.broadcast_to(np.asarray(t["mean"], np.float32), true.shape)
    if loaded.config.output == "joints":
        model_metrics, model_per_landmark = _joint_metrics(pred, true)
        base_metrics, base_per_landmark = _joint_metrics(mean_pose, true)
        per_landmark = {"model": model_per_landmark, "baseline": base_per_landmark}
    else:
        model_metrics = {"mae_rad": float(np.abs(pred - true).mean())}
        base_metrics = {"mae_rad": float(np.abs(mean_pose - true).mean())}
        for m in (model_metrics, base_metrics):
            m["mae_deg"] = math.degrees(m["mae_rad"])
        per_landmark = None
    result = DirectEvaluation(
        sessions, int(pred.shape[0]), model_metrics, base_metrics, per_landmark, pred, true, times, owner
    )
    if plot_dir is not None and loaded.config.output == "joints" and is_main_process():
        result.pngs.append(plot_trajectories(result, Path(plot_dir) / "trajectories.png"))
    return result


def plot_trajectories(
    evaluation: DirectEvaluation,
    png: str | Path,
    *,
    landmarks: Sequence[int] = (4, 8, 20),
    session: int = 0,
    max_seconds: float = 30.0,
) -> Path:
    """Predicted vs true trajectory of a few landmarks on one held-out session (PNG).

    For each landmark, the coordinate that moves most in the truth is drawn
    over the first ``max_seconds`` of the session.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from emgjax.data.mindrove import LANDMARK_NAMES

    rows = np.flatnonzero(evaluation.session_index == session)
    if rows.size == 0:
        raise ValueError(f"plot_trajectories: expected frames of session {session}, found none")
    rows = rows[np.argsort(evaluation.times[rows], kind="stable")]
    rows = rows[evaluation.times[rows] <= evaluation.times[rows[0]] + max_seconds]
    t = evaluation.times[rows]
    figure = Figure(figsize=(10, 2.4 * len(landmarks)), constrained_layout=True)
    FigureCanvasAgg(figure)
    axes = figure.subplots(len(landmarks), 1, squeeze=False)[:, 0]
    for axis, landmark in zip(axes, landmarks, strict=True):
        true = evaluation.true[rows, landmark]
        pred = evaluation.pred[rows, landmark]
        coord = int(np.argmax(true.std(axis=0)))
        axis.plot(t, true[:, coord], color="black", linewidth=1.2, label="true")
        axis.plot(t, pred[:, coord], color="tab:orange", linewidth=1.0, label="predicted")
        axis.set_ylabel(f"{LANDMARK_NAMES[landmark]} {'xyz'[coord]} (mm)")
        axis.grid(alpha=0.3)
    axes[0].set_title(f"held-out session {evaluation.sessions[session].name}: predicted vs true")
    axes[0].legend(loc="upper right")
    axes[-1].set_xlabel("time (s)")
    png = Path(png)
    png.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(png, dpi=100)
    return png


def format_report(evaluation: DirectEvaluation, *, title: str = "held-out evaluation") -> str:
    """A short text table: model vs predict-the-mean baseline, overall and per finger."""
    names = [p.name for p in evaluation.sessions]
    lines = [f"{title}: {evaluation.frames} poses from {len(names)} held-out session(s) {', '.join(names)}"]
    lines.append(f"  {'metric':<22}{'model':>10}{'baseline':>10}{'model/baseline':>16}")
    for key, value in evaluation.model.items():
        base = evaluation.baseline[key]
        ratio = f"{value / base:.2f}" if base else "-"
        lines.append(f"  {key:<22}{value:>10.2f}{base:>10.2f}{ratio:>16}")
    return "\n".join(lines)
