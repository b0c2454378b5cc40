"""Weighted sums over a run of paths at once, written as LLVM vector code.

The path-batched kernels (``kernels.distress.debtrank_paths_batched``) hold their state
path-minor, (n, batch) arrays, and their inner step is one term of a sparse weighted sum
applied to a run of paths: ``acc[b] += w * rows[r, b]``. Written as a Numba loop over b,
LLVM vectorises it but keeps ``acc`` in memory: every term loads and stores the partial sums
and checks that the two rows do not overlap, so a term costs about as much as in scalar
code. These intrinsics emit the loop over terms themselves, with the partial sums of the
run's paths as vector values that stay in registers across terms.

Bit for bit the scalar arithmetic: separate ``fmul`` and ``fadd`` without fast-math flags are
the IEEE operations of ``acc += w * x`` in scalar code (LLVM fuses a multiply-add only under
the ``contract`` flag, which is never set), and each path's terms are added in the order the
scalar loop adds them. Callers stay reproducible and keep their Python twins. The vector
width is a matter of speed only: LLVM splits a vector wider than the machine's registers
into several, with the same results.
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

# Partial sums per weighted sum: a sum's t-th term goes into sum t mod LANES.
LANES = 4
# Paths per call of ``propagate_row`` and ``scatter_terms``: two vectors of four doubles (one
# AVX2 register each). LANES·WIDTH/4 = 8 vector sums stay in registers.
WIDTH = 8
# Paths per call of ``propagate_wide_row``: two vectors of eight doubles (one AVX-512
# register each, two AVX2 registers each where that is all there is). A term then costs one
# load of the debtor's index and weight for 16 paths instead of 8; the rows it reads from
# are 128 bytes, two whole cache lines when the array is 64-byte aligned.
WIDE = 16
# Whole groups of LANES terms between two checks of the early stop.
STOP_CHECK = 4

_I64 = ir.IntType(64)
_DOUBLE = ir.DoubleType()
_VEC4 = ir.VectorType(_DOUBLE, 4)
_VECTORS4 = WIDTH // 4


# Row indices the intrinsics read from an array: int64, or uint32 (half the memory traffic of a
# term's index; kernels.distress stores the debtors of its gathers so).
INDEX_DTYPES = (types.int64, types.uint32)


def _is_c_array(ty, dtypes, ndim):
    return (
        isinstance(ty, types.Array) and ty.dtype in dtypes and ty.ndim == ndim and ty.layout == "C"
    )


def _accepts(arrays, integers):
    """The typing rule of the intrinsics: each (type, dtypes, ndim) a C-order array of one of
    those dtypes and that rank, each of ``integers`` a signed integer (``_as_i64`` widens it
    as such)."""
    return all(_is_c_array(ty, dtypes, ndim) for ty, dtypes, ndim in arrays) and all(
        isinstance(x, types.Integer) and x.signed for x in integers
    )


def _array(context, builder, ty, value):
    """(data pointer, shape values) of a Numba array argument."""
    array = context.make_array(ty)(context, builder, value)
    return array.data, cgutils.unpack_tuple(builder, array.shape, ty.ndim)


def _row_vector_pointers(builder, data, row_length, row, col0, vec, count):
    """Pointers to the ``count`` vectors of type ``vec`` that make up
    data[row, col0:col0 + count · vec.count] (C order)."""
    start = builder.add(builder.mul(row, row_length), col0)
    return [
        builder.bitcast(
            builder.gep(data, [builder.add(start, ir.Constant(_I64, v * vec.count))]),
            vec.as_pointer(),
        )
        for v in range(count)
    ]


def _splat(builder, value, vec):
    vector = builder.insert_element(
        ir.Constant(vec, ir.Undefined), value, ir.Constant(ir.IntType(32), 0)
    )
    mask = ir.Constant(ir.VectorType(ir.IntType(32), vec.count), [0] * vec.count)
    return builder.shuffle_vector(vector, ir.Constant(vec, ir.Undefined), mask)


def _as_i64(builder, value, signed=True):
    """``value``, an integer of at most 64 bits, as i64: sign-extended if ``signed``, else
    zero-extended."""
    if value.type.width == 64:
        return value
    return builder.sext(value, _I64) if signed else builder.zext(value, _I64)


def _all_at_least_one(builder, vectors):
    """i1: every element of the vectors is ≥ 1."""
    size = vectors[0].type.count
    one = ir.Constant(vectors[0].type, [1.0] * size)
    flags = builder.fcmp_ordered(">=", vectors[0], one)
    for vector in vectors[1:]:
        flags = builder.and_(flags, builder.fcmp_ordered(">=", vector, one))
    bits = builder.bitcast(flags, ir.IntType(size))
    return builder.icmp_signed("==", bits, ir.Constant(ir.IntType(size), -1))


def _propagate_row_intrinsic(name, width, vector):
    """The intrinsic ``name``: ``propagate_row`` for runs of ``width`` paths, in vectors of
    ``vector`` doubles."""
    vec = ir.VectorType(_DOUBLE, vector)
    count = width // vector

    def propagate_row(typingctx, out, h, j, start, stop, index, weight, push, col0, first_check):
        arrays = (
            (out, (types.float64,), 2),
            (h, (types.float64,), 2),
            (index, INDEX_DTYPES, 1),
            (weight, (types.float64,), 1),
            (push, (types.float64,), 2),
        )
        if not _accepts(arrays, (j, start, stop, col0, first_check)):
            return None
        sig = types.void(out, h, j, start, stop, index, weight, push, col0, first_check)

        def codegen(context, builder, signature, args):
            out_ty, h_ty, _, _, _, index_ty, weight_ty, push_ty, _, _ = signature.args
            out_v, h_v, j_v, start_v, stop_v, index_v, weight_v, push_v, col0_v, check_v = args
            out_data, out_shape = _array(context, builder, out_ty, out_v)
            h_data, h_shape = _array(context, builder, h_ty, h_v)
            index_data, _ = _array(context, builder, index_ty, index_v)
            weight_data, _ = _array(context, builder, weight_ty, weight_v)
            push_data, push_shape = _array(context, builder, push_ty, push_v)
            j_v, start_v, stop_v, col0_v, check_v = (
                _as_i64(builder, x) for x in (j_v, start_v, stop_v, col0_v, check_v)
            )
            out_pointers = _row_vector_pointers(
                builder, out_data, out_shape[1], j_v, col0_v, vec, count
            )
            base = [
                builder.load(p, align=8)
                for p in _row_vector_pointers(builder, h_data, h_shape[1], j_v, col0_v, vec, count)
            ]
            one = ir.Constant(vec, [1.0] * vector)

            def store_out(vectors):
                for pointer, value in zip(out_pointers, vectors, strict=True):
                    builder.store(value, pointer, align=8)

            def add_term(term, lane):
                row = _as_i64(
                    builder, builder.load(builder.gep(index_data, [term])), index_ty.dtype.signed
                )
                w = _splat(builder, builder.load(builder.gep(weight_data, [term])), vec)
                pointers = _row_vector_pointers(
                    builder, push_data, push_shape[1], row, col0_v, vec, count
                )
                for v, pointer in enumerate(pointers):
                    slot = sums[lane * count + v]
                    product = builder.fmul(w, builder.load(pointer, align=8))
                    builder.store(builder.fadd(builder.load(slot), product), slot)

            def add_groups(first, last):
                # Whole groups of LANES terms from first (a group start) to last.
                with cgutils.for_range_slice(
                    builder, first, last, ir.Constant(_I64, LANES), inc=True
                ) as (u, _):
                    for lane in range(LANES):
                        add_term(builder.add(u, ir.Constant(_I64, lane)), lane)

            def totals():
                # h + ((s0 + s1) + (s2 + s3)), the scalar code's order (LANES is 4).
                result = []
                for v in range(count):
                    s = [builder.load(sums[lane * count + v]) for lane in range(LANES)]
                    pair = builder.fadd(builder.fadd(s[0], s[1]), builder.fadd(s[2], s[3]))
                    result.append(builder.fadd(base[v], pair))
                return result

            def group_start(term):
                # The start of the group of LANES terms that holds ``term`` (≥ start).
                offset = builder.and_(builder.sub(term, start_v), ir.Constant(_I64, -LANES))
                return builder.add(start_v, offset)

            # Partial sums in stack slots of vector type: LLVM promotes them to registers.
            zero = ir.Constant(vec, [0.0] * vector)
            sums = [cgutils.alloca_once_value(builder, zero) for _ in range(LANES * count)]
            done = builder.append_basic_block("propagate_row.done")
            with builder.if_then(_all_at_least_one(builder, base), likely=False):
                store_out(base)
                builder.branch(done)
            whole = group_start(stop_v)
            chunk = ir.Constant(_I64, LANES * STOP_CHECK)

            def at_most(a, b):
                return builder.select(builder.icmp_signed("<", a, b), a, b)

            # The first chunk, then a check: a row that saturates on its first few heavy
            # terms stops there, whatever first_check says.
            early = at_most(builder.add(start_v, chunk), whole)
            add_groups(start_v, early)
            first_saturated = builder.and_(
                builder.icmp_signed(">", early, start_v), _all_at_least_one(builder, totals())
            )
            with builder.if_then(first_saturated, likely=False):
                store_out([one] * count)
                builder.branch(done)
            # No check before first_check: clamped to [early, whole], down to a group start.
            unchecked = builder.select(builder.icmp_signed("<", check_v, early), early, check_v)
            unchecked = group_start(at_most(unchecked, whole))
            add_groups(early, unchecked)
            t_slot = cgutils.alloca_once_value(builder, unchecked)
            chunk_head = builder.append_basic_block("propagate_row.chunk_head")
            chunk_next = builder.append_basic_block("propagate_row.chunk_next")
            chunk_body = builder.append_basic_block("propagate_row.chunk_body")
            tail = builder.append_basic_block("propagate_row.tail")
            builder.branch(chunk_head)
            # The check at ``unchecked`` (unless that is where the first one was), then after
            # every chunk.
            builder.position_at_end(chunk_head)
            t = builder.load(t_slot)
            saturated = builder.and_(
                builder.icmp_signed(">", t, early), _all_at_least_one(builder, totals())
            )
            with builder.if_then(saturated, likely=False):
                store_out([one] * count)
                builder.branch(done)
            builder.branch(chunk_next)
            builder.position_at_end(chunk_next)
            builder.cbranch(builder.icmp_signed("<", t, whole), chunk_body, tail)
            builder.position_at_end(chunk_body)
            chunk_end = at_most(builder.add(t, chunk), whole)
            add_groups(t, chunk_end)
            builder.store(chunk_end, t_slot)
            builder.branch(chunk_head)
            builder.position_at_end(tail)
            for lane in range(LANES - 1):
                term = builder.add(whole, ir.Constant(_I64, lane))
                with builder.if_then(builder.icmp_signed("<", term, stop_v)):
                    add_term(term, lane)
            store_out([builder.select(builder.fcmp_ordered("<", x, one), x, one) for x in totals()])
            builder.branch(done)
            builder.position_at_end(done)
            return context.get_dummy_value()

        return sig, codegen

    propagate_row.__name__ = propagate_row.__qualname__ = name
    propagate_row.__doc__ = _PROPAGATE_ROW_DOC.format(width=width)
    return intrinsic(propagate_row)


_PROPAGATE_ROW_DOC = """out[j, c] = min(1, h[j, c] + Σ_t weight[t] · push[index[t], c])
    for the {width} paths c = col0, …, col0 + {width} − 1, t in range(start, stop), each
    path's sum formed as in ``kernels.distress._propagate``'s gather.

    Term t goes into partial sum (t − start) mod LANES; the last (stop − start) mod LANES terms
    into the first sums; the sums add up as (s0 + s1) + (s2 + s3). Paths already at h ≥ 1
    on every one of the {width} keep h. The early stop: if h + the sums so far is ≥ 1 on every
    path, the rest is skipped and out is 1, since rounding is monotone and the terms are ≥ 0
    (push ≥ 0, weight ≥ 0), so the full sums would reach 1 too. It is checked after the
    first STOP_CHECK groups of LANES terms; then not before the terms before ``first_check``
    are in (rounded down to whole groups from start, clamped to the row), and from there
    after every STOP_CHECK further groups. ``first_check`` saves the checks of a row that is
    not expected to have saturated yet; it never changes a result.

    out, h, push : (n, batch) float64, C order, col0 + {width} ≤ batch (out may be h);
    index : (m,) int64 or uint32; weight : (m,) float64. Nothing is checked.
    """

propagate_row = _propagate_row_intrinsic("propagate_row", WIDTH, 4)
propagate_wide_row = _propagate_row_intrinsic("propagate_wide_row", WIDE, 8)


@intrinsic
def scatter_terms(typingctx, sums, start, stop, slot, weight, rows, row, col0):
    """sums[slot[k], col0:col0 + WIDTH] += weight[k] · rows[row, col0:col0 + WIDTH] for k in
    range(start, stop), in that order.

    sums : (s, batch) float64, C order; slot : (m,) int64; weight : (m,) float64;
    rows : (n, batch) float64, C order, col0 + WIDTH ≤ batch. Nothing is checked.
    """
    arrays = (
        (sums, (types.float64,), 2),
        (slot, (types.int64,), 1),
        (weight, (types.float64,), 1),
        (rows, (types.float64,), 2),
    )
    if not _accepts(arrays, (start, stop, row, col0)):
        return None
    sig = types.void(sums, start, stop, slot, weight, rows, row, col0)

    def codegen(context, builder, signature, args):
        sums_ty, _, _, slot_ty, weight_ty, rows_ty, _, _ = signature.args
        sums_v, start_v, stop_v, slot_v, weight_v, rows_v, row_v, col0_v = args
        sums_data, sums_shape = _array(context, builder, sums_ty, sums_v)
        slot_data, _ = _array(context, builder, slot_ty, slot_v)
        weight_data, _ = _array(context, builder, weight_ty, weight_v)
        rows_data, rows_shape = _array(context, builder, rows_ty, rows_v)
        col0_v = _as_i64(builder, col0_v)
        source = _row_vector_pointers(
            builder, rows_data, rows_shape[1], _as_i64(builder, row_v), col0_v, _VEC4, _VECTORS4
        )
        pushed = [builder.load(pointer, align=8) for pointer in source]
        with cgutils.for_range(
            builder, builder.sub(_as_i64(builder, stop_v), _as_i64(builder, start_v))
        ) as loop:
            k = builder.add(_as_i64(builder, start_v), loop.index)
            target = builder.load(builder.gep(slot_data, [k]))
            w = _splat(builder, builder.load(builder.gep(weight_data, [k])), _VEC4)
            for pointer, value in zip(
                _row_vector_pointers(
                    builder, sums_data, sums_shape[1], target, col0_v, _VEC4, _VECTORS4
                ),
                pushed,
                strict=True,
            ):
                builder.store(
                    builder.fadd(builder.load(pointer, align=8), builder.fmul(w, value)),
                    pointer,
                    align=8,
                )
        return context.get_dummy_value()

    return sig, codegen
