"""The train step (shard_map on 4 devices == 1 device == pmap == local == vmapped), losses and the optimiser."""

import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.sharding import PartitionSpec

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "_scripts"))
import train_tiny

from emgjax.train import (
    OptimConfig,
    TrainState,
    angle_l1,
    create_train_state,
    emg2pose_loss,
    fingertip_distance,
    joint_distance,
    joint_mse,
    make_data_mesh,
    make_eval_step,
    make_optimizer,
    make_per_device_train_step,
    make_schedule,
    masked_mean,
    pad_batch,
    shard_batch,
    trainable_mask,
)
from emgjax.train.step import (
    make_local_eval_step,
    make_local_train_step,
    make_per_device_eval_step,
    make_vmapped_train_step,
    stack_trees,
    step_rng,
    unstack_tree,
)

STEPS = 3


_global_batch = train_tiny.global_batch  # valid rows spread 4, 1, 0, 3 over the 4 device shards


def _run(train_step, eval_step, state, batch, mesh):
    sharded = shard_batch(batch, mesh)
    history = []
    for _ in range(STEPS):
        state, metrics = train_step(state, sharded)
        history.append(jax.device_get(metrics))
    return jax.device_get(state), history, jax.device_get(eval_step(state, sharded))


@pytest.fixture(scope="module")
def single_device_result():
    return train_tiny.single_device_reference(STEPS)


def _assert_trees_close(a, b, atol):
    for (path, x), y in zip(jax.tree_util.tree_leaves_with_path(a), jax.tree_util.tree_leaves(b), strict=True):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=0, atol=atol, err_msg=jax.tree_util.keystr(path))


def test_four_device_shard_map_step_equals_single_device(single_device_result):
    assert len(jax.devices()) == 4
    _, mesh, _, state, _, train_step, eval_step = train_tiny.build(jax.devices())
    state4, history4, eval4 = _run(train_step, eval_step, state, _global_batch(), mesh)
    state1, history1, eval1 = single_device_result
    assert int(state4.step) == int(state1.step) == STEPS
    _assert_trees_close(state4.params, state1.params, 1e-5)
    _assert_trees_close(state4.batch_stats, state1.batch_stats, 1e-5)
    for m4, m1 in zip([*history4, eval4], [*history1, eval1], strict=True):
        assert set(m4) == set(m1) == {"loss", "joint_distance"}
        for key in m1:
            np.testing.assert_allclose(m4[key], m1[key], rtol=1e-5, atol=1e-5)
    # The first step's metrics are the plain (unmapped) loss of the initial model on the global batch.
    from emgjax.models.direct import DirectModel
    from emgjax.recipes.direct import make_direct_loss_fn

    plain = DirectModel(train_tiny.tiny_config())
    variables = train_tiny.initial_variables(0)
    loss, (metrics, _) = jax.jit(make_direct_loss_fn(plain, scale=10.0, axis_name=None), static_argnums=4)(
        variables["params"], variables["batch_stats"], _global_batch(), jax.random.PRNGKey(0), True
    )
    np.testing.assert_allclose(history4[0]["loss"], loss, rtol=1e-5)
    np.testing.assert_allclose(history4[0]["joint_distance"], metrics["joint_distance"], rtol=1e-5)


def test_same_per_device_step_under_pmap(single_device_result):
    _model, _, optimizer, _, loss_fn, _, _ = train_tiny.build(jax.devices()[:1])
    variables = train_tiny.initial_variables(0)
    state = create_train_state(variables["params"], optimizer, 1, variables["batch_stats"])
    n = 4
    stacked = jax.tree_util.tree_map(lambda x: jnp.broadcast_to(x, (n, *jnp.shape(x))), state)
    batch = {k: v.reshape((n, -1, *v.shape[1:])) for k, v in _global_batch().items()}
    step = jax.pmap(make_per_device_train_step(loss_fn, optimizer, axis_name="data"), axis_name="data")
    for _ in range(STEPS):
        stacked, _ = step(stacked, batch)
    per_device = jax.device_get(stacked)
    state1 = single_device_result[0]
    for d in range(n):
        replica = jax.tree_util.tree_map(lambda x, d=d: x[d], per_device)
        _assert_trees_close(replica.params, state1.params, 1e-5)
        _assert_trees_close(replica.batch_stats, state1.batch_stats, 1e-5)
    evaluate = jax.pmap(make_per_device_eval_step(loss_fn, axis_name="data"), axis_name="data")
    metrics = jax.device_get(evaluate(stacked, batch))
    np.testing.assert_allclose(metrics["loss"], single_device_result[2]["loss"], rtol=1e-5)


def _local_task():
    """The tiny task outside any mapped axis: the same model and loss without axis names."""
    from emgjax.models.direct import DirectModel
    from emgjax.recipes.direct import make_direct_loss_fn

    _model, _, optimizer, _, _, _, _ = train_tiny.build(jax.devices()[:1])
    loss_fn = make_direct_loss_fn(DirectModel(train_tiny.tiny_config()), scale=10.0, axis_name=None)
    variables = train_tiny.initial_variables(0)
    state = create_train_state(variables["params"], optimizer, 1, variables["batch_stats"])
    return loss_fn, optimizer, state


def test_local_step_equals_the_sharded_step(single_device_result):
    loss_fn, optimizer, state = _local_task()
    step = make_local_train_step(loss_fn, optimizer)
    history = []
    for _ in range(STEPS):
        state, metrics = step(state, _global_batch())
        history.append(jax.device_get(metrics))
    state1, history1, eval1 = single_device_result
    assert int(state.step) == STEPS
    _assert_trees_close(state.params, state1.params, 1e-5)
    _assert_trees_close(state.batch_stats, state1.batch_stats, 1e-5)
    for m, m1 in zip(history, history1, strict=True):
        np.testing.assert_allclose(m["loss"], m1["loss"], rtol=1e-5)
    evaluated = make_local_eval_step(loss_fn)(state, _global_batch())
    np.testing.assert_allclose(evaluated["loss"], eval1["loss"], rtol=1e-5)


def test_vmapped_step_trains_each_model_with_its_own_batch_entries():
    loss_fn, optimizer, state = _local_task()

    def weighted(params, batch_stats, batch, rng, train):
        loss, (metrics, new_stats) = loss_fn(params, batch_stats, batch, rng, train)
        return batch["weight"] * loss, (metrics, new_stats)

    other = state.replace(rng=jax.random.key_data(jax.random.key(5)))
    stacked = stack_trees([state, other])
    per_model = {"weight": jnp.asarray([1.0, 0.0])}
    step = make_vmapped_train_step(weighted, optimizer)
    local = make_local_train_step(weighted, optimizer)
    single = state
    for _ in range(STEPS):
        stacked, metrics = step(stacked, _global_batch(), per_model)
        single, _ = local(single, {**_global_batch(), "weight": jnp.float32(1.0)})
    assert metrics["loss"].shape == (2,) and np.asarray(stacked.step).tolist() == [STEPS, STEPS]
    _assert_trees_close(unstack_tree(stacked.params, 0), single.params, 1e-5)
    _assert_trees_close(unstack_tree(stacked.batch_stats, 0), single.batch_stats, 1e-5)
    # weight 0: no gradient, so Adam leaves the parameters exactly where they were (BatchNorm statistics move).
    for a, b in zip(
        jax.tree_util.tree_leaves(unstack_tree(stacked.params, 1)), jax.tree_util.tree_leaves(state.params), strict=True
    ):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match=r"disjoint shared and per-model batch keys, found both holding \['emg'\]"):
        step(stacked, _global_batch(), {"emg": jnp.zeros((2, 1))})


def test_dropout_keys_differ_per_device_and_step():
    mesh = make_data_mesh()
    state = TrainState(
        step=jnp.int32(7), params={}, batch_stats={}, opt_state=(), rng=jax.random.key_data(jax.random.key(0))
    )

    def keys(state):
        return jax.random.key_data(step_rng(state, "data"))[None]

    per_device = jax.jit(
        jax.shard_map(keys, mesh=mesh, in_specs=PartitionSpec(), out_specs=PartitionSpec("data"), check_vma=False)
    )(state)
    assert len({tuple(k) for k in np.asarray(per_device)}) == 4
    again = np.asarray(
        jax.jit(
            jax.shard_map(keys, mesh=mesh, in_specs=PartitionSpec(), out_specs=PartitionSpec("data"), check_vma=False)
        )(state)
    )
    np.testing.assert_array_equal(again, per_device)  # a resumed run redraws the same keys
    later = np.asarray(
        jax.jit(
            jax.shard_map(keys, mesh=mesh, in_specs=PartitionSpec(), out_specs=PartitionSpec("data"), check_vma=False)
        )(state.replace(step=jnp.int32(8)))
    )
    assert not np.array_equal(later, per_device)


def test_step_rejects_batches_that_do_not_split_over_devices():
    _, mesh, _, state, _, train_step, _ = train_tiny.build(jax.devices())
    batch = {k: v[:6] for k, v in _global_batch().items()}
    with pytest.raises(ValueError, match="divisible by 4 devices, found shape"):
        train_step(state, batch)
    with pytest.raises(ValueError, match="multiple of 4 local devices, found 'emg' with 6 rows"):
        shard_batch(batch, mesh)
    with pytest.raises(ValueError, match="same batch size"):
        shard_batch({"emg": np.zeros((4, 8, 16)), "valid": np.zeros((8,), bool)}, mesh)
    with pytest.raises(ValueError, match="expected a 1-D mesh with axis 'data'"):
        make_eval_step(lambda *a: None, make_data_mesh(axis_name="batch"))
    padded, rows = pad_batch(batch, 4)
    assert rows == 6 and padded["emg"].shape[0] == 8 and not padded["valid"][6:].any()
    with pytest.raises(ValueError, match="mask entry"):
        pad_batch({"emg": np.zeros((3, 2))}, 4)
    assert pad_batch({"emg": np.zeros((4, 2))}, 4)[1] == 4  # nothing to pad: no mask needed


# ---------------------------------------------------------------------------- losses


def test_masked_mean_over_devices_equals_global_mean_for_uneven_masks():
    mesh = make_data_mesh()
    rng = np.random.default_rng(0)
    values = rng.normal(size=(8, 5)).astype(np.float32)
    mask = np.zeros((8, 5), bool)
    mask[0] = True
    mask[1, :2] = True
    mask[7, 4] = True  # devices hold 7, 0, 0 and 1 valid entries

    def per_device(v, m):
        return jax.lax.pmean(masked_mean(v, m, axis_name="data"), "data")

    sharded = jax.jit(
        jax.shard_map(per_device, mesh=mesh, in_specs=PartitionSpec("data"), out_specs=PartitionSpec(), check_vma=False)
    )(values, mask)
    np.testing.assert_allclose(sharded, values[mask].mean(), rtol=1e-6)
    np.testing.assert_allclose(masked_mean(values, mask), values[mask].mean(), rtol=1e-6)
    assert float(masked_mean(values, np.zeros_like(mask))) == 0.0
    with pytest.raises(ValueError, match=r"broadcastable to values \(8, 5\), found \(3,\)"):
        masked_mean(values, np.ones(3, bool))


def test_angle_and_joint_losses_against_numpy():
    rng = np.random.default_rng(1)
    pred, target = rng.normal(size=(2, 20, 6)), rng.normal(size=(2, 20, 6))
    mask = rng.random((2, 6)) > 0.4
    expected = np.abs(pred - target).transpose(0, 2, 1)[mask].mean()
    np.testing.assert_allclose(angle_l1(pred, target, mask), expected, rtol=1e-6)
    with pytest.raises(ValueError, match=r"mask \(B, T\), found \(2, 20, 6\) and \(2, 20\)"):
        angle_l1(pred, target, mask[:, :1].repeat(20, 1))
    joints_p, joints_t = rng.normal(size=(4, 21, 3)), rng.normal(size=(4, 21, 3))
    valid = np.array([True, False, True, True])
    np.testing.assert_allclose(
        joint_mse(joints_p, joints_t, valid, scale=10.0), (100 * (joints_p - joints_t) ** 2)[valid].mean(), rtol=1e-6
    )
    np.testing.assert_allclose(
        joint_distance(joints_p, joints_t, valid), np.linalg.norm(joints_p - joints_t, axis=-1)[valid].mean(), rtol=1e-6
    )
    grad = jax.grad(lambda p: joint_distance(p, p))(jnp.asarray(joints_p))
    assert np.isfinite(np.asarray(grad)).all()  # zero distance: finite gradient
    with pytest.raises(ValueError, match=r"joints of shape \(..., J, 3\), found \(4, 63\)"):
        joint_mse(joints_p.reshape(4, 63), joints_t.reshape(4, 63))
    with pytest.raises(ValueError, match="same shape"):
        joint_mse(joints_p, joints_t[:2])


def test_fingertip_term_uses_the_given_forward_kinematics():
    rng = np.random.default_rng(2)
    lift = rng.normal(size=(20, 21 * 3))

    def fk(angles):  # a linear stand-in for forward kinematics: (..., 20) -> (..., 21, 3)
        return (angles @ lift).reshape((*angles.shape[:-1], 21, 3))

    pred, target = rng.normal(size=(2, 20, 5)), rng.normal(size=(2, 20, 5))
    mask = np.array([[1, 1, 0, 1, 0], [0, 0, 0, 1, 1]], bool)
    tips = [4, 8, 12, 16, 20]
    p = (pred.transpose(0, 2, 1) @ lift).reshape(2, 5, 21, 3)[:, :, tips]
    t = (target.transpose(0, 2, 1) @ lift).reshape(2, 5, 21, 3)[:, :, tips]
    expected_tip = np.linalg.norm(p - t, axis=-1)[mask].mean()
    # The training term: every sample (every=1), MediaPipe's fingertip indices in fk's output.
    np.testing.assert_allclose(
        fingertip_distance(pred, target, mask, fk, every=1, fingertips=tips), expected_tip, rtol=1e-5
    )
    loss, metrics = emg2pose_loss(pred, target, mask, fk_fn=fk, fingertip_weight=0.01)
    np.testing.assert_allclose(loss, metrics["angle_l1"] + 0.01 * expected_tip, rtol=1e-5)
    loss_only_l1, metrics_l1 = emg2pose_loss(pred, target, mask)
    assert set(metrics_l1) == {"loss", "angle_l1"} and float(loss_only_l1) == float(metrics_l1["angle_l1"])


# ---------------------------------------------------------------------------- optimiser


def _toy_params():
    return {
        "encoder": {"kernel": jnp.ones((3, 4)), "bias": jnp.zeros(4)},
        "head": {"kernel": jnp.ones((4, 2)), "bias": jnp.zeros(2)},
    }


def test_frozen_parameters_stay_bitwise_equal_and_have_no_optimizer_state():
    params = _toy_params()
    config = OptimConfig(learning_rate=0.1, optimizer="adamw", weight_decay=0.1, grad_clip_norm=1.0)
    by_predicate = make_optimizer(config, params, trainable=lambda path, _: path[0] == "head")
    by_tree = make_optimizer(config, params, trainable={"encoder": False, "head": True})
    grads = jax.tree_util.tree_map(lambda x: jnp.full_like(x, 3.0), params)
    for tx in (by_predicate, by_tree):
        opt_state = tx.init(params)
        state_sizes = sum(np.size(x) for x in jax.tree_util.tree_leaves(opt_state))
        head_size = 4 * 2 + 2
        assert state_sizes <= 2 * head_size + 4  # mu and nu for the head only (+ step counters)
        current = params
        for _ in range(3):
            updates, opt_state = tx.update(grads, opt_state, current)
            current = optax.apply_updates(current, updates)
        for key in ("kernel", "bias"):
            np.testing.assert_array_equal(np.asarray(current["encoder"][key]), np.asarray(params["encoder"][key]))
            assert not np.array_equal(np.asarray(current["head"][key]), np.asarray(params["head"][key]))
    mask = trainable_mask(params, {"encoder": False, "head": True})
    assert mask == {"encoder": {"kernel": False, "bias": False}, "head": {"kernel": True, "bias": True}}
    with pytest.raises(ValueError, match="pytree of bools matching"):
        make_optimizer(config, params, trainable={"decoder": True})
    with pytest.raises(ValueError, match="every parameter frozen"):
        make_optimizer(config, params, trainable=lambda path, _: False)


def test_clipping_sees_only_trainable_gradients():
    params = _toy_params()
    # A large eps makes Adam's step proportional to the (clipped) gradient, so clipping is visible.
    config = OptimConfig(learning_rate=1.0, eps=1e3, grad_clip_norm=1.0)
    tx = make_optimizer(config, params, trainable=lambda path, _: path[0] == "head")
    head_grads = jax.tree_util.tree_map(lambda x: jnp.full_like(x, 0.01), params["head"])
    small = {"encoder": jax.tree_util.tree_map(jnp.zeros_like, params["encoder"]), "head": head_grads}
    huge = {"encoder": jax.tree_util.tree_map(lambda x: jnp.full_like(x, 1e6), params["encoder"]), "head": head_grads}
    updates_small, _ = tx.update(small, tx.init(params), params)
    updates_huge, _ = tx.update(huge, tx.init(params), params)
    np.testing.assert_array_equal(
        np.asarray(updates_small["head"]["kernel"]), np.asarray(updates_huge["head"]["kernel"])
    )
    # And clipping does act on the trainable norm: 100x the gradient gives the clipped (norm 1) step.
    big_head = jax.tree_util.tree_map(lambda g: g * 1e4, small)
    updates_big, _ = tx.update(big_head, tx.init(params), params)
    norm = np.sqrt(sum(float(jnp.sum(g**2)) for g in jax.tree_util.tree_leaves(big_head["head"])))
    ratio = np.asarray(updates_big["head"]["kernel"]) / np.asarray(updates_small["head"]["kernel"])
    np.testing.assert_allclose(ratio, 1e4 / norm, rtol=1e-3)


def test_schedules():
    constant = make_schedule(OptimConfig(learning_rate=1e-3))
    assert float(constant(0)) == float(constant(10_000)) == pytest.approx(1e-3)
    cosine = make_schedule(
        OptimConfig(
            learning_rate=1e-3, schedule="warmup_cosine", warmup_steps=10, decay_steps=110, end_learning_rate=1e-5
        )
    )
    assert float(cosine(0)) == 0.0
    assert float(cosine(5)) == pytest.approx(5e-4)
    assert float(cosine(10)) == pytest.approx(1e-3)
    assert float(cosine(60)) == pytest.approx(1e-5 + (1e-3 - 1e-5) / 2, rel=1e-4)
    assert float(cosine(110)) == pytest.approx(1e-5)
    step = make_schedule(OptimConfig(learning_rate=1e-3, schedule="step", decay_steps=100, decay_rate=0.5))
    assert [float(step(s)) for s in (0, 99, 100, 250)] == pytest.approx([1e-3, 1e-3, 5e-4, 2.5e-4])
    warm_step = make_schedule(OptimConfig(learning_rate=1e-3, schedule="step", warmup_steps=10, decay_steps=100))
    assert float(warm_step(5)) == pytest.approx(5e-4) and float(warm_step(10)) == pytest.approx(1e-3)
    for bad, match in [
        (dict(schedule="linear"), "schedule"),
        (dict(optimizer="sgd"), "optimizer"),
        (dict(grad_clip_norm=-1.0), "grad_clip_norm"),
        (dict(schedule="warmup_cosine", warmup_steps=10, decay_steps=5), "decay_steps"),
        (dict(schedule="step"), "decay_steps"),
        (dict(learning_rate=0.0), "learning_rate"),
    ]:
        with pytest.raises(ValueError, match=match):
            OptimConfig(**bad)
    assert OptimConfig.from_dict(OptimConfig(schedule="step", decay_steps=3).to_dict()).decay_steps == 3


def test_warmup_cosine_without_decay_steps_decays_over_the_run():
    """README: OptimConfig(learning_rate=1e-3, schedule="warmup_cosine", grad_clip_norm=1.0) is a valid config;
    its cosine spans the run's total steps, given to make_optimizer/make_schedule."""
    config = OptimConfig(learning_rate=1e-3, schedule="warmup_cosine", grad_clip_norm=1.0, warmup_steps=10)
    assert config.decay_steps == 0
    over_run = make_schedule(config, total_steps=110)
    explicit = make_schedule(
        OptimConfig(learning_rate=1e-3, schedule="warmup_cosine", warmup_steps=10, decay_steps=110)
    )
    steps = [0, 5, 10, 37, 60, 109, 110, 200]
    assert [float(over_run(s)) for s in steps] == pytest.approx([float(explicit(s)) for s in steps])
    assert float(over_run(60)) == pytest.approx(5e-4, rel=1e-4) and float(over_run(110)) == 0.0
    # An explicit decay_steps wins over the run length.
    fixed = make_schedule(OptimConfig(learning_rate=1e-3, schedule="warmup_cosine", decay_steps=50), total_steps=1000)
    assert float(fixed(50)) == 0.0
    with pytest.raises(
        ValueError,
        match=r"decay_steps=0 decays over the run's total steps; expected make_optimizer\(\.\.\., total_steps=N\)",
    ):
        make_optimizer(config)
    with pytest.raises(ValueError, match="total_steps: expected an integer > warmup_steps=10"):
        make_schedule(config, total_steps=10)
    with pytest.raises(ValueError, match="decay_steps: expected >= 0"):
        OptimConfig(schedule="warmup_cosine", decay_steps=-5)
    params = _toy_params()
    tx = make_optimizer(config, total_steps=110)
    grads = jax.tree_util.tree_map(jnp.ones_like, params)
    updates, _ = tx.update(grads, tx.init(params), params)  # step 0 of the warm-up: learning rate 0
    assert all(float(jnp.max(jnp.abs(u))) == 0.0 for u in jax.tree_util.tree_leaves(updates))


def test_train_state_checks_rng():
    params = _toy_params()
    tx = make_optimizer(OptimConfig())
    typed = create_train_state(params, tx, jax.random.key(3))
    legacy = create_train_state(params, tx, jax.random.PRNGKey(3))
    seeded = create_train_state(params, tx, 3)
    np.testing.assert_array_equal(typed.rng, legacy.rng)
    np.testing.assert_array_equal(typed.rng, seeded.rng)
    with pytest.raises(ValueError, match="uint32 key data"):
        create_train_state(params, tx, np.zeros(2, np.float32))
    with pytest.raises(ValueError, match="expected a 1-D data mesh"):
        shard_batch({"x": np.zeros((4, 2))}, jax.sharding.Mesh(np.array(jax.devices()).reshape(2, 2), ("a", "b")))
