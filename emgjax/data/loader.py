"""Batching loader: seeded shuffle, per-process shard, background prefetch, resumable.

Choice: a thin loader of our own rather than grain. What training needs is
small (permute, shard, batch, prefetch, resume), and doing it here:

- keeps grain out of the core dependencies: grain 0.2.18 needs protobuf
  >= 5.28.3, which the optional offline MediaPipe (0.10.14 declares protobuf
  < 5) cannot share an environment with (pip then falls back to grain 0.2.11);
- makes the resumable state three plain ints (``epoch``, ``position``,
  ``seed``) that JSON and Orbax store as they are, instead of an opaque
  iterator blob tied to a grain version;
- makes every random choice a pure function of (seed, epoch, index): the
  epoch permutation uses ``SeedSequence([seed, epoch, 0])`` and window
  ``index`` gets ``Generator(SeedSequence([seed, epoch, 1, index]))`` for
  jitter and augmentation. A resumed loader therefore yields bit-identical
  batches, whatever the prefetch depth, worker count or thread timing.

Sharding: each epoch's permutation of all N windows is cut to a multiple of
``process_count`` (with ``drop_remainder``) and process p takes positions
p, p + P, p + 2P, ...: the shards are disjoint, cover the epoch, and every
process gets the same number of batches (needed so collective steps line up
across hosts). ``batch_size`` is per process.

Prefetch runs in one background thread, which overlaps reading with the
(GIL-releasing) device step of the training loop. ``num_workers > 1`` also
builds the windows of one batch in a thread pool: h5py serialises the HDF5
calls themselves, but the numpy work after them (transposes, casts, masks,
augmentation) runs in parallel. Results keep their order, so batches do not
depend on the number of workers.
"""

from __future__ import annotations

import concurrent.futures
import inspect
import math
import queue
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["Loader", "collate", "window_rng"]

_PERMUTATION_STREAM = 0
_WINDOW_STREAM = 1


def window_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The Generator a window gets: a pure function of (seed, epoch, index)."""
    return np.random.default_rng(np.random.SeedSequence([seed, epoch, _WINDOW_STREAM, index]))


def collate(samples: Sequence[Mapping[str, Any]]) -> dict[str, np.ndarray]:
    """Stack a list of dict samples into a dict of (B, ...) arrays."""
    if not samples:
        raise ValueError("collate: expected at least one sample, found none")
    keys = list(samples[0])
    batch = {}
    for key in keys:
        try:
            batch[key] = np.stack([np.asarray(sample[key]) for sample in samples])
        except KeyError:
            raise ValueError(f"collate: every sample needs key {key!r}; one has only {sorted(samples[-1])}") from None
        except ValueError as err:
            first = np.shape(samples[0][key])
            index = next((i for i, sample in enumerate(samples) if np.shape(sample[key]) != first), None)
            if index is None:  # same shapes: the values themselves do not stack (ragged objects, ...)
                raise ValueError(f"collate: expected {key!r} values that stack into one array, found: {err}") from None
            raise ValueError(
                f"collate: samples disagree on the shape of {key!r}: expected the first sample's {first}, "
                f"found {np.shape(samples[index][key])} at sample {index} of the batch"
            ) from None
    for sample in samples:
        if set(sample) != set(keys):
            raise ValueError(f"collate: samples have different keys: {sorted(keys)} vs {sorted(sample)}")
    return batch


def _non_negative_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"{name}: expected a non-negative integer, found {value!r}")
    return int(value)


class _Failure:
    """An exception raised in the prefetch thread, re-raised by the consumer."""

    def __init__(self, error: BaseException):
        self.error = error


_DONE = object()


class Loader:
    """Iterate a random-access dataset in batches, one epoch per ``iter``.

    Usage::

        loader = Loader(dataset, batch_size=32, seed=0)
        for epoch in range(num_epochs):
            for batch in loader:            # dict of (B, ...) numpy arrays
                ...
                checkpoint["loader"] = loader.state()
        # later, in a fresh process:
        loader = Loader(dataset, batch_size=32, state=checkpoint["loader"])

    Args:
      dataset: has ``__len__`` and ``__getitem__(index)`` returning a dict of
        arrays; if ``__getitem__`` accepts ``rng`` it gets the window's
        Generator (`window_rng`), unless the dataset says ``needs_rng`` is
        False (building a Generator costs ~0.1 ms, more than a short window).
      batch_size: windows per batch, per process.
      shuffle: permute the windows each epoch (else dataset order).
      seed: base seed (default 0; taken from ``state`` when resuming).
      drop_remainder: drop the last partial batch and the windows that do
        not divide among processes (keeps batch counts equal across hosts).
      prefetch: batches prepared ahead in a background thread (0: none).
      num_workers: threads building the windows of a batch (1: serial).
      process_index, process_count: this process's shard; default
        ``jax.process_index()`` / ``jax.process_count()``.
      progress: show a tqdm bar per epoch.
      state: a dict from `state` to continue from. Resume with the same
        dataset, batch_size, shuffle, drop_remainder and process layout: the
        state counts batches of that layout.
    """

    def __init__(
        self,
        dataset: Any,
        batch_size: int,
        *,
        shuffle: bool = True,
        seed: int | None = None,
        drop_remainder: bool = True,
        prefetch: int = 2,
        num_workers: int = 1,
        process_index: int | None = None,
        process_count: int | None = None,
        progress: bool = False,
        state: Mapping[str, int] | None = None,
    ):
        if not (hasattr(dataset, "__len__") and hasattr(dataset, "__getitem__")):
            raise ValueError(
                f"dataset: expected an object with __len__ and __getitem__, found {type(dataset).__name__}"
            )
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size <= 0:
            raise ValueError(f"batch_size: expected a positive integer, found {batch_size!r}")
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.drop_remainder = bool(drop_remainder)
        self.prefetch = _non_negative_int("prefetch", prefetch)
        self.num_workers = _non_negative_int("num_workers", num_workers)
        if self.num_workers == 0:
            raise ValueError("num_workers: expected a positive integer, found 0")
        self.progress = bool(progress)
        if process_index is None or process_count is None:
            import jax  # only when the caller leaves the shard to JAX's view of the cluster

            process_index = jax.process_index() if process_index is None else process_index
            process_count = jax.process_count() if process_count is None else process_count
        self.process_count = _non_negative_int("process_count", process_count)
        self.process_index = _non_negative_int("process_index", process_index)
        if self.process_count == 0 or self.process_index >= self.process_count:
            raise ValueError(
                "expected 0 <= process_index < process_count, "
                f"found process_index={process_index}, process_count={process_count}"
            )
        self._takes_rng = self._accepts_rng(dataset) and bool(getattr(dataset, "needs_rng", True))

        if state is None:
            self.seed = 0 if seed is None else _non_negative_int("seed", seed)
            self._epoch, self._position = 0, 0
        else:
            if not isinstance(state, Mapping) or set(state) != {"epoch", "position", "seed"}:
                raise ValueError(f"state: expected a dict with keys epoch, position, seed; found {state!r}")
            values = {key: _non_negative_int(f"state['{key}']", state[key]) for key in ("epoch", "position", "seed")}
            if seed is not None and int(seed) != values["seed"]:
                raise ValueError(f"seed={seed} contradicts the resumed state's seed {values['seed']}; pass one of them")
            if values["position"] > len(self):
                raise ValueError(
                    f"state['position']={values['position']} exceeds the {len(self)} batches per epoch of this "
                    "dataset/batch size/shard: was the state saved with a different configuration?"
                )
            self.seed, self._epoch, self._position = values["seed"], values["epoch"], values["position"]
        if len(self) == 0:
            raise ValueError(
                f"no batches: {len(dataset)} windows over {self.process_count} processes give fewer than "
                f"batch_size={self.batch_size} per process (drop_remainder={self.drop_remainder})"
            )

    @staticmethod
    def _accepts_rng(dataset: Any) -> bool:
        try:
            return "rng" in inspect.signature(dataset.__getitem__).parameters
        except (TypeError, ValueError):
            return False

    # -- epoch layout -----------------------------------------------------

    def _shard_size(self) -> int:
        n = len(self.dataset)
        if self.drop_remainder:
            return n // self.process_count
        return len(range(self.process_index, n, self.process_count))

    def __len__(self) -> int:
        """Batches per epoch for this process."""
        size = self._shard_size()
        return size // self.batch_size if self.drop_remainder else math.ceil(size / self.batch_size)

    def epoch_indices(self, epoch: int) -> np.ndarray:
        """(S,) window indices this process visits in ``epoch``, in order."""
        n = len(self.dataset)
        if self.shuffle:
            order = np.random.default_rng(np.random.SeedSequence([self.seed, epoch, _PERMUTATION_STREAM])).permutation(
                n
            )
        else:
            order = np.arange(n)
        if self.drop_remainder:
            order = order[: (n // self.process_count) * self.process_count]
        return order[self.process_index :: self.process_count]

    # -- state ------------------------------------------------------------

    @property
    def epoch(self) -> int:
        return self.state()["epoch"]

    def state(self) -> dict[str, int]:
        """{"epoch", "position", "seed"} as plain ints: the next batch to yield."""
        if self._position >= len(self):
            return {"epoch": self._epoch + 1, "position": 0, "seed": self.seed}
        return {"epoch": self._epoch, "position": self._position, "seed": self.seed}

    # -- iteration --------------------------------------------------------

    def _load_window(self, epoch: int, index: int) -> Mapping[str, Any]:
        if self._takes_rng:
            return self.dataset.__getitem__(index, rng=window_rng(self.seed, epoch, index))
        return self.dataset[index]

    def _load_batch(self, epoch: int, indices: np.ndarray, pool=None) -> dict[str, np.ndarray]:
        indices = [int(i) for i in indices]
        if pool is None:
            return collate([self._load_window(epoch, i) for i in indices])
        return collate(list(pool.map(lambda i: self._load_window(epoch, i), indices)))

    def __iter__(self) -> Iterator[dict[str, np.ndarray]]:
        """Yield the remaining batches of the current epoch, then advance the epoch."""
        state = self.state()
        self._epoch, self._position = state["epoch"], state["position"]
        epoch, first = self._epoch, self._position
        indices = self.epoch_indices(epoch)
        batches = [indices[b * self.batch_size : (b + 1) * self.batch_size] for b in range(first, len(self))]
        bar = None
        if self.progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(self), initial=first, desc=f"epoch {epoch}", unit="batch", leave=False)
        pool = None
        if self.num_workers > 1:
            pool = concurrent.futures.ThreadPoolExecutor(self.num_workers, thread_name_prefix="emgjax-loader-worker")
        if self.prefetch:
            source = self._prefetched(epoch, batches, pool)
        else:
            source = (self._load_batch(epoch, b, pool) for b in batches)
        try:
            for batch in source:
                self._position += 1
                if bar is not None:
                    bar.update(1)
                yield batch
            self._epoch, self._position = epoch + 1, 0
        finally:
            if hasattr(source, "close"):
                source.close()
            if bar is not None:
                bar.close()
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)

    def _prefetched(self, epoch: int, batches: list[np.ndarray], pool) -> Iterator[dict[str, np.ndarray]]:
        buffer: queue.Queue = queue.Queue(maxsize=self.prefetch)
        stop = threading.Event()

        def put(item: Any) -> bool:
            while not stop.is_set():
                try:
                    buffer.put(item, timeout=0.1)
                    return True
                except queue.Full:
                    continue
            return False

        def produce() -> None:
            try:
                for batch_indices in batches:
                    if not put(self._load_batch(epoch, batch_indices, pool)):
                        return
                put(_DONE)
            except BaseException as error:  # re-raised in the consumer's thread
                put(_Failure(error))

        worker = threading.Thread(target=produce, name="emgjax-loader-prefetch", daemon=True)
        worker.start()
        try:
            while True:
                item = buffer.get()
                if item is _DONE:
                    return
                if isinstance(item, _Failure):
                    raise item.error
                yield item
        finally:
            # Stopping early (break, exception): let the producer exit promptly.
            stop.set()
            worker.join()
