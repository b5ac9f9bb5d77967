"""The adapter benchmark's statistics, its stacked training (per-model data and learning rates) and its data split."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from scipy import stats as scipy_stats

from emgjax.data.sessions import SessionArrays
from emgjax.recipes.adapter.report import summarise
from emgjax.recipes.adapter.stack import StackModel, train_stack, with_learning_rates
from emgjax.recipes.adapter.stats import data_seed_means, mean_ci, paired_comparison, row_ci
from emgjax.train.optim import OptimConfig, make_optimizer
from emgjax.train.state import create_train_state


def test_mean_ci_is_the_student_t_interval():
    values = [1.0, 2.0, 4.0, 7.0]
    mean, half = mean_ci(values)
    low, high = scipy_stats.t.interval(0.95, 3, loc=np.mean(values), scale=scipy_stats.sem(values))
    assert mean == pytest.approx(3.5) and half == pytest.approx((high - low) / 2)
    assert math.isnan(mean_ci([2.0])[1]) and math.isnan(mean_ci([])[0])


def test_paired_comparison_matches_runs_and_broadcasts_untrained_rows():
    rng = np.random.default_rng(0)
    # A trained row (3 data seeds x 3 init seeds) whose every run beats an untrained row (one run per data seed)
    # by 1 +- 0.1, while both vary a lot between data seeds: only pairing can see the difference.
    floor = {(d, None): 10.0 + 5.0 * d for d in range(3)}
    trained = {(d, s): floor[(d, None)] - 1.0 + 0.1 * rng.standard_normal() for d in range(3) for s in range(3)}
    c = paired_comparison(trained, floor)
    # The untrained run of a data seed is matched with every init seed of it; the test is over data seeds.
    per_seed = [np.mean([trained[(d, s)] for s in range(3)]) - floor[(d, None)] for d in range(3)]
    assert c is not None and c["n"] == 3 and c["significant"]
    assert c["p"] == pytest.approx(scipy_stats.ttest_1samp(per_seed, 0.0).pvalue)
    assert c["diff"] == pytest.approx(np.mean(per_seed)) and c["diff"] == pytest.approx(-1.0, abs=0.15)
    assert c["run_level"]["n"] == 9
    assert paired_comparison(floor, trained)["diff"] == pytest.approx(-c["diff"])  # same pairs, either order
    unpaired = scipy_stats.ttest_ind(list(trained.values()), list(floor.values())).pvalue
    assert unpaired > 0.05  # the unpaired test would call it noise
    # Differences that change sign between data seeds: no significant difference.
    shift = {k: (1.0, -1.2, 0.3)[k[0]] for k in trained}
    mixed = paired_comparison({k: v + shift[k] for k, v in trained.items()}, trained)
    assert not mixed["significant"] and mixed["p"] > 0.5
    assert paired_comparison(trained, trained)["p"] == 1.0
    assert paired_comparison({(0, 0): 1.0, (0, 1): 3.0}, {(0, 0): 2.0, (0, 1): 2.0}) is None  # one data seed: no test


def test_data_seeds_not_runs_are_the_units():
    """Differences that vary between data seeds but not within: run level calls it significant, data seeds do not."""
    rng = np.random.default_rng(1)
    base = {(d, s): 10.0 + rng.standard_normal() for d in range(3) for s in range(3)}
    effect = {0: 2.0, 1: 0.2, 2: 1.0}  # one draw of users helps much more than another
    a = {(d, s): v + effect[d] + 0.01 * (s - 1) for (d, s), v in base.items()}
    c = paired_comparison(a, base)
    keys = sorted(base)
    x, y = np.array([a[k] for k in keys]), np.array([base[k] for k in keys])
    run_p = scipy_stats.ttest_rel(x, y).pvalue
    seed_p = scipy_stats.ttest_1samp(list(effect.values()), 0.0).pvalue  # init-seed offsets average out
    assert run_p < 0.01 and c["run_level"]["significant"] and c["run_level"]["p"] == pytest.approx(run_p)
    assert seed_p > 0.1 and not c["significant"] and c["p"] == pytest.approx(seed_p)
    low, high = scipy_stats.t.interval(0.95, 2, loc=np.mean(list(effect.values())), scale=scipy_stats.sem([2, 0.2, 1]))
    assert c["diff"] == pytest.approx(16 / 15) and c["ci95"] == pytest.approx((high - low) / 2)
    assert c["ci95"] > 2 * c["run_level"]["ci95"]  # the run-level interval is far too narrow
    # A row's headline interval is over its per-data-seed means (df = 2), not its 9 runs (df = 8).
    means = [np.mean([a[(d, s)] for s in range(3)]) for d in range(3)]
    assert data_seed_means(a) == pytest.approx(dict(enumerate(means)))
    low, high = scipy_stats.t.interval(0.95, 2, loc=np.mean(means), scale=scipy_stats.sem(means))
    assert row_ci(a) == pytest.approx((np.mean(means), (high - low) / 2))
    assert row_ci(a)[1] > mean_ci(list(a.values()))[1]


def test_constant_differences_and_partial_matches():
    trained = {(d, s): 5.0 + d + 0.3 * s for d in range(4) for s in range(3)}
    # The same difference on every run: zero spread, p = 0; the identical row: p = 1.
    c = paired_comparison({k: v + 0.5 for k, v in trained.items()}, trained)
    assert c["diff"] == pytest.approx(0.5) and c["ci95"] == pytest.approx(0.0) and c["p"] == 0.0 and c["significant"]
    assert c["n"] == 4 and c["run_level"]["p"] == 0.0
    # Differences that vary within each data seed but average to the same value in every one: constant over
    # the units (p = 0), while the run-level test sees the within-seed spread.
    spread = {k: v + (0.4, 0.5, 0.6)[k[1]] for k, v in trained.items()}
    c = paired_comparison(spread, trained)
    assert c["p"] == 0.0 and c["diff"] == pytest.approx(0.5)
    assert c["run_level"]["p"] == pytest.approx(scipy_stats.ttest_1samp([0.4, 0.5, 0.6] * 4, 0.0).pvalue)
    # Two untrained rows: one run per data seed, so both levels are the same test.
    u = {(d, None): float(d * d) for d in range(4)}
    v = {(d, None): float(d) for d in range(4)}
    c = paired_comparison(u, v)
    assert c["n"] == c["run_level"]["n"] == 4 and c["p"] == pytest.approx(c["run_level"]["p"])
    assert c["p"] == pytest.approx(scipy_stats.ttest_rel([0, 1, 4, 9], [0, 1, 2, 3]).pvalue)
    # Missing runs: data seed 1 lacks init seed 2 (its mean is over the 2 matched runs); data seed 3 is
    # missing from the untrained row (left out: 3 units).
    partial = {k: v for k, v in trained.items() if k != (1, 2)}
    floor = {(d, None): 4.0 for d in range(3)}
    c = paired_comparison(partial, floor)
    expected = [np.mean([5.0 + d + 0.3 * s for s in range(3) if (d, s) != (1, 2)]) - 4.0 for d in range(3)]
    assert c["n"] == 3 and c["run_level"]["n"] == 8
    assert c["diff"] == pytest.approx(np.mean(expected))
    assert c["p"] == pytest.approx(scipy_stats.ttest_1samp(expected, 0.0).pvalue)


def test_summarise_compares_every_row_with_the_floor_and_ceilings():
    def runs(values, seeds=True):
        return [
            {"data_seed": d, "seed": (s if seeds else None), "angle_mae_deg": v}
            for (d, s), v in zip([(d, s) for d in range(3) for s in (range(3) if seeds else [0])], values, strict=True)
        ]

    def row(kind, variant, trained, values, seeds=True):
        return {
            "row": kind,
            "variant": variant,
            "objective": "-",
            "trained": trained,
            "params": 0,
            "learning_rate": None,
            "runs": runs(values, seeds),
        }

    rows = [
        row("ceiling", "true", "no", [5.0, 6.0, 7.0], seeds=False),
        row("floor", "zero", "no", [12.0, 13.0, 14.0], seeds=False),
        row("floor", "dup", "no", [9.0, 10.0, 11.0], seeds=False),
        row("trained", "a", "yes", [6.0 + 0.01 * i + (i // 3) for i in range(9)]),
    ]
    table = summarise(rows)
    assert table[0]["reference_labels"]["vs_floor"] == "floor: dup"  # the better floor
    adapter = table[-1]
    assert adapter["runs"] == 9 and adapter["data_seeds"] == 3 and adapter["vs_floor"]["diff"] == pytest.approx(-2.96)
    assert adapter["vs_floor"]["n"] == 3 and adapter["vs_floor"]["run_level"]["n"] == 9
    assert adapter["vs_floor"]["significant"] and adapter["vs_ceiling"]["diff"] == pytest.approx(1.04)
    # Headline interval over the 3 per-data-seed means (6.01, 7.04, 8.07); run level over the 9 runs.
    means = [6.01, 7.04, 8.07]
    half = scipy_stats.t.ppf(0.975, 2) * scipy_stats.sem(means)
    assert adapter["angle_mae_deg"] == pytest.approx((7.04, half))
    assert adapter["run_level"]["angle_mae_deg"] == pytest.approx(
        mean_ci([6.0 + 0.01 * i + (i // 3) for i in range(9)])
    )
    assert table[2]["vs_floor"] is None and "vs_calibrated" not in table[0]


def _sessions(seed: int, n: int = 2, samples: int = 400) -> list[SessionArrays]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        emg = rng.standard_normal((16, samples)).astype(np.float32)
        angles = rng.standard_normal((20, samples)).astype(np.float32)
        out.append(SessionArrays(emg, angles, np.ones(samples, bool), emg[::2, ::4].copy()))
    return out


def test_train_stack_gives_each_model_its_data_and_learning_rate():
    """A linear map trained on each model's own windows: models with lr 0 stay put, a model equals its solo run."""

    def loss_fn(params, batch_stats, batch, rng, train):
        pred = jnp.einsum("oc,bct->bot", params["w"], batch["emg"])
        return jnp.mean((pred - batch["joint_angles"][:, :, ::4]) ** 2), ({"mean_emg": jnp.mean(batch["emg"])}, {})

    base = make_optimizer(OptimConfig(learning_rate=1.0, schedule="constant", grad_clip_norm=0.0))
    optimizer = with_learning_rates(base)
    params = {"w": jnp.zeros((20, 8), jnp.float32)}

    def state():
        return create_train_state(params, optimizer, jax.random.key(0))

    data = {0: _sessions(0), 1: _sessions(1)}
    models = [StackModel(0, 0, "pose", 0.0), StackModel(0, 0, "pose", 1e-2), StackModel(1, 0, "pose", 1e-2)]
    stacked, metrics = train_stack(
        loss_fn, optimizer, [state() for _ in models], models, data, steps=3, batch_size=2, window=64
    )
    w = np.asarray(stacked.params["w"])
    assert np.all(w[0] == 0)  # learning rate 0: untouched
    assert not np.allclose(w[1], w[2])  # same learning rate, other data seed: other windows
    m = np.asarray(metrics["mean_emg"])
    assert m[0] == m[1] != m[2]  # one data seed, one batch
    solo, _ = train_stack(loss_fn, optimizer, [state()], [models[1]], data, steps=3, batch_size=2, window=64)
    np.testing.assert_allclose(np.asarray(solo.params["w"])[0], w[1], rtol=1e-5, atol=1e-7)
    # The same run with the learning rate in the optimiser instead of the state: identical updates.
    plain = optax.adam(1e-2)
    direct = create_train_state(params, plain, jax.random.key(0))
    from emgjax.train.step import make_local_train_step

    step = make_local_train_step(loss_fn, plain)
    rng = np.random.default_rng([1234, 0])
    from emgjax.data.sessions import sample_batch

    for _ in range(3):
        direct, _ = step(direct, sample_batch(data[0], rng, 2, 64))
    np.testing.assert_allclose(np.asarray(direct.params["w"]), w[1], rtol=1e-5, atol=1e-7)
    with pytest.raises(ValueError, match="training sessions for data seeds \\[5\\]"):
        train_stack(
            loss_fn, optimizer, [state()], [StackModel(5, 0, "pose", 1.0)], data, steps=1, batch_size=1, window=64
        )
