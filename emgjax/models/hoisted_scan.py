"""A `lax.scan` whose weight-matrix gradients are computed after the loop, not accumulated in it.

Reverse-mode autodiff of a scan whose body multiplies by a weight matrix ``W`` adds ``a_tᵀ · dy_t``
into ``dW`` at every step: a small, badly shaped matmul plus a read and write of the whole of ``dW``
per step (for the emg2pose decoder, three 512 × 2048 matrices, 12 MiB per step, ~245 steps a window).
`scan_hoisted` runs the same loop but keeps, per step, the inputs ``a_t`` of those products and the
gradients ``dy_t`` of their outputs, then forms every ``dW = Σ_t a_tᵀ dy_t`` as one
(in, T·B) @ (T·B, out) matmul after the loop. Only what is truly sequential stays in the backward loop.
The direct models' LSTM does the same by hand (`emgjax.models.lstm`); this is the general form for
loops that are not a plain LSTM (the pose rollout, with its fed-back pose).

How: the step function receives a ``dot(a, w)``. For ``w`` a 2-D array leaf of ``weights`` (the very
object, not a slice or a transpose of it), ``dot`` computes ``a @ stop_gradient(w) + tap_t``, where
``tap_t`` is a zero input of the scan; the scan's own reverse pass then yields ``dy_t`` as the
cotangent of ``tap_t`` (stacked over steps), and the weight gradient is added after the loop. Every
other use of a weight (biases, elementwise factors, other products) is differentiated as usual.
Values are bit-identical to ``lax.scan`` with ``jnp.dot``; gradients equal autodiff's up to the order of
float32 summation.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

from emgjax.models.layers import matmul

Dot = Callable[[jax.Array, jax.Array], jax.Array]
Step = Callable[[Any, Any, Any, Dot], tuple[Any, Any]]


def _is_array(leaf: Any) -> bool:
    return isinstance(leaf, (jax.Array, jax.core.Tracer)) or hasattr(leaf, "__jax_array__") or hasattr(leaf, "dtype")


def _index(matrix: Any, candidates: list[Any]) -> int | None:
    """Position of ``matrix`` (by identity) among ``candidates``, else None."""
    for k, leaf in enumerate(candidates):
        if matrix is leaf:
            return k
    return None


def scan_hoisted(
    step: Step,
    weights: Any,
    carry: Any,
    xs: Any,
    *,
    unroll: int | bool = 1,
    hoist: bool = True,
    compute_dtype: Any = None,
) -> tuple[Any, Any]:
    """``lax.scan(lambda c, x: step(weights, c, x, dot), carry, xs)`` with the weight gradients hoisted.

    step(weights, carry, x_t, dot) -> (carry, y_t): one step; it must use ``dot(a, w)`` (a: (B, in),
    w: (in, out)) for the products whose weight gradient should leave the loop, and the same
    products in the same order at every step (they do: the body is traced once).
    weights: a pytree; its 2-D float array leaves are the candidates, other leaves (Python floats,
    vectors) are used as they are. Returns (final carry, stacked ys), as `lax.scan` does.
    ``hoist=False``: a plain `lax.scan` with ``jnp.dot`` (autodiff accumulates in the loop), for the
    shapes where that is faster (see `emgjax.models.pose_modules.HOISTED_MAX_BATCH`).
    ``compute_dtype``: the operand dtype of every ``dot`` and of the hoisted weight-gradient products
    (`emgjax.models.layers.matmul`: e.g. bfloat16 operands, float32 results); None: float32.
    """
    leaves, treedef = jax.tree_util.tree_flatten(weights)
    array_at = [k for k, leaf in enumerate(leaves) if _is_array(leaf)]
    array_leaves = [leaves[k] for k in array_at]

    def rebuild(arrays: list[Any]) -> Any:
        full = list(leaves)
        for k, array in zip(array_at, arrays, strict=True):
            full[k] = array
        return jax.tree_util.tree_unflatten(treedef, full)

    # Which products does one step make? Trace one step (shapes only) with a recording dot.
    plan: list[tuple[int, tuple[int, ...], Any]] = []  # (array leaf index, output shape, output dtype)

    def probe(arrays: list[Any], carry: Any, x_t: Any) -> Any:
        def dot(a: jax.Array, w: jax.Array) -> jax.Array:
            out = matmul(a, w, compute_dtype)
            k = _index(w, arrays)
            if k is not None and jnp.ndim(w) == 2 and jnp.issubdtype(jnp.result_type(w), jnp.floating):
                plan.append((k, tuple(out.shape), out.dtype))
            return out

        return step(rebuild(arrays), carry, x_t, dot)

    def plain_dot(a: jax.Array, w: jax.Array) -> jax.Array:
        return matmul(a, w, compute_dtype)

    def plain(arrays: list[Any], carry: Any, xs: Any) -> tuple[Any, Any]:
        w = rebuild(arrays)
        return lax.scan(lambda c, x: step(w, c, x, plain_dot), carry, xs, unroll=unroll)

    if not hoist:
        return plain(array_leaves, carry, xs)

    x0 = jax.tree_util.tree_map(lambda x: jax.ShapeDtypeStruct(x.shape[1:], x.dtype), xs)
    jax.eval_shape(probe, array_leaves, carry, x0)

    if not plan:
        return plain(array_leaves, carry, xs)

    def tapped(arrays: list[Any], carry: Any, xs: Any, taps: tuple[jax.Array, ...]) -> tuple[Any, Any]:
        """The loop with tap inputs: returns ((final carry, ys), the stacked product inputs a_t)."""
        w = rebuild(arrays)

        def body(c: Any, inputs: tuple[Any, tuple[jax.Array, ...]]) -> tuple[Any, Any]:
            x_t, taps_t = inputs
            product_inputs: list[jax.Array] = []

            def dot(a: jax.Array, m: jax.Array) -> jax.Array:
                j = len(product_inputs)
                k = _index(m, arrays)
                if j >= len(plan) or k != plan[j][0]:
                    return matmul(a, m, compute_dtype)  # not a planned product: plain autodiff
                product_inputs.append(a)
                return matmul(a, lax.stop_gradient(m), compute_dtype) + taps_t[j]

            c, y = step(w, c, x_t, dot)
            if len(product_inputs) != len(plan):
                raise RuntimeError(
                    f"scan_hoisted: the step made {len(product_inputs)} planned products, expected {len(plan)}"
                )
            return c, (y, tuple(product_inputs))

        c_final, (ys, product_inputs) = lax.scan(body, carry, (xs, taps), unroll=unroll)
        return (c_final, ys), product_inputs

    num_steps = jax.tree_util.tree_leaves(xs)[0].shape[0]

    @jax.custom_vjp
    def hoisted(arrays: list[Any], carry: Any, xs: Any) -> tuple[Any, Any]:
        return plain(arrays, carry, xs)

    def hoisted_fwd(arrays: list[Any], carry: Any, xs: Any) -> tuple[Any, Any]:
        taps = tuple(jnp.zeros((num_steps, *shape), dtype) for _, shape, dtype in plan)
        out, vjp, product_inputs = jax.vjp(tapped, arrays, carry, xs, taps, has_aux=True)
        return out, (vjp, product_inputs)

    def hoisted_bwd(residuals: tuple[Any, Any], cotangent: Any) -> tuple[Any, Any, Any]:
        vjp, product_inputs = residuals
        d_arrays, d_carry, d_xs, d_taps = vjp(cotangent)
        d_arrays = list(d_arrays)
        for (k, _, _), a, dy in zip(plan, product_inputs, d_taps, strict=True):
            # Σ_t a_tᵀ dy_t over every step and batch row at once: (in, T·B) @ (T·B, out).
            a_rows = a.reshape(-1, a.shape[-1])
            dy_rows = dy.reshape(-1, dy.shape[-1])
            d_arrays[k] = d_arrays[k] + matmul(a_rows.T, dy_rows, compute_dtype).astype(d_arrays[k].dtype)
        return d_arrays, d_carry, d_xs

    hoisted.defvjp(hoisted_fwd, hoisted_bwd)
    return hoisted(array_leaves, carry, xs)


__all__ = ["Dot", "scan_hoisted"]
