"""Run a TensorFlow Lite model file as a torch ``nn.Module`` (no TFLite runtime needed).

The ``.tflite`` file is a FlatBuffer (schema: tensorflow/lite/schema/schema.fbs). This module
hand-writes the few table accessors it needs on top of the ``flatbuffers`` package, then:

* reads constants (buffers), dequantises fp16 / int8 constants to float32 and densifies sparse
  constants (``DENSIFY`` op / tensor sparsity parameters) itself, at load time;
* folds every operator whose inputs are all constant (``DEQUANTIZE``, ``DENSIFY`` ...);
* converts weights once to torch layouts (conv filters OHWI -> OIHW, depthwise 1HWC -> C1HW)
  and keeps all rank-4 activations in NCHW;
* executes the remaining operator list with torch ops in a plain loop.

``TFLiteModel.forward`` takes and returns tensors in the *TFLite* layout (NHWC for rank-4), so
its outputs compare directly with a TFLite interpreter. Unknown operators raise
:class:`UnsupportedOpError` naming the operator.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import flatbuffers
import numpy as np
import torch
import torch.nn.functional as F
from flatbuffers.table import Table

# --------------------------------------------------------------------------------------------
# Schema constants (tensorflow/lite/schema/schema.fbs)
# --------------------------------------------------------------------------------------------

BUILTIN_OPS: dict[int, str] = {
    0: "ADD", 1: "AVERAGE_POOL_2D", 2: "CONCATENATION", 3: "CONV_2D", 4: "DEPTHWISE_CONV_2D",
    5: "DEPTH_TO_SPACE", 6: "DEQUANTIZE", 7: "EMBEDDING_LOOKUP", 8: "FLOOR", 9: "FULLY_CONNECTED",
    10: "HASHTABLE_LOOKUP", 11: "L2_NORMALIZATION", 12: "L2_POOL_2D",
    13: "LOCAL_RESPONSE_NORMALIZATION", 14: "LOGISTIC", 15: "LSH_PROJECTION", 16: "LSTM",
    17: "MAX_POOL_2D", 18: "MUL", 19: "RELU", 20: "RELU_N1_TO_1", 21: "RELU6", 22: "RESHAPE",
    23: "RESIZE_BILINEAR", 24: "RNN", 25: "SOFTMAX", 26: "SPACE_TO_DEPTH", 27: "SVDF", 28: "TANH",
    29: "CONCAT_EMBEDDINGS", 30: "SKIP_GRAM", 31: "CALL", 32: "CUSTOM",
    33: "EMBEDDING_LOOKUP_SPARSE", 34: "PAD", 35: "UNIDIRECTIONAL_SEQUENCE_RNN", 36: "GATHER",
    37: "BATCH_TO_SPACE_ND", 38: "SPACE_TO_BATCH_ND", 39: "TRANSPOSE", 40: "MEAN", 41: "SUB",
    42: "DIV", 43: "SQUEEZE", 44: "UNIDIRECTIONAL_SEQUENCE_LSTM", 45: "STRIDED_SLICE",
    46: "BIDIRECTIONAL_SEQUENCE_RNN", 47: "EXP", 48: "TOPK_V2", 49: "SPLIT", 50: "LOG_SOFTMAX",
    51: "DELEGATE", 52: "BIDIRECTIONAL_SEQUENCE_LSTM", 53: "CAST", 54: "PRELU", 55: "MAXIMUM",
    56: "ARG_MAX", 57: "MINIMUM", 58: "LESS", 59: "NEG", 60: "PADV2", 61: "GREATER",
    62: "GREATER_EQUAL", 63: "LESS_EQUAL", 64: "SELECT", 65: "SLICE", 66: "SIN",
    67: "TRANSPOSE_CONV", 68: "SPARSE_TO_DENSE", 69: "TILE", 70: "EXPAND_DIMS", 71: "EQUAL",
    72: "NOT_EQUAL", 73: "LOG", 74: "SUM", 75: "SQRT", 76: "RSQRT", 77: "SHAPE", 78: "POW",
    79: "ARG_MIN", 80: "FAKE_QUANT", 81: "REDUCE_PROD", 82: "REDUCE_MAX", 83: "PACK",
    84: "LOGICAL_OR", 85: "ONE_HOT", 86: "LOGICAL_AND", 87: "LOGICAL_NOT", 88: "UNPACK",
    89: "REDUCE_MIN", 90: "FLOOR_DIV", 91: "REDUCE_ANY", 92: "SQUARE", 93: "ZEROS_LIKE",
    94: "FILL", 95: "FLOOR_MOD", 96: "RANGE", 97: "RESIZE_NEAREST_NEIGHBOR", 98: "LEAKY_RELU",
    99: "SQUARED_DIFFERENCE", 100: "MIRROR_PAD", 101: "ABS", 102: "SPLIT_V", 103: "UNIQUE",
    104: "CEIL", 105: "REVERSE_V2", 106: "ADD_N", 107: "GATHER_ND", 108: "COS", 109: "WHERE",
    110: "RANK", 111: "ELU", 112: "REVERSE_SEQUENCE", 113: "MATRIX_DIAG", 114: "QUANTIZE",
    115: "MATRIX_SET_DIAG", 116: "ROUND", 117: "HARD_SWISH", 118: "IF", 119: "WHILE",
    120: "NON_MAX_SUPPRESSION_V4", 121: "NON_MAX_SUPPRESSION_V5", 122: "SCATTER_ND",
    123: "SELECT_V2", 124: "DENSIFY", 125: "SEGMENT_SUM", 126: "BATCH_MATMUL",
}

# TensorType -> numpy dtype
TENSOR_TYPES: dict[int, np.dtype] = {
    0: np.dtype(np.float32), 1: np.dtype(np.float16), 2: np.dtype(np.int32),
    3: np.dtype(np.uint8), 4: np.dtype(np.int64), 6: np.dtype(np.bool_), 7: np.dtype(np.int16),
    9: np.dtype(np.int8), 10: np.dtype(np.float64),
}

_ACTIVATIONS = {0: "NONE", 1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6", 4: "TANH"}


class UnsupportedOpError(NotImplementedError):
    """The model uses an operator (or an operator option) this runtime does not implement."""


class TFLiteFormatError(ValueError):
    """The file is not a TFLite flatbuffer this runtime can read."""


# --------------------------------------------------------------------------------------------
# Minimal flatbuffer accessors
# --------------------------------------------------------------------------------------------

class _T:
    """A flatbuffer table with field accessors by slot number (slot i -> vtable offset 4+2i)."""

    __slots__ = ("tab",)

    def __init__(self, buf: bytearray | bytes, pos: int):
        self.tab = Table(buf, pos)

    def _off(self, slot: int) -> int:
        return self.tab.Offset(4 + 2 * slot)

    def has(self, slot: int) -> bool:
        return self._off(slot) != 0

    def scalar(self, slot: int, flags, default=0):
        o = self._off(slot)
        return self.tab.Get(flags, o + self.tab.Pos) if o else default

    def u8(self, slot, default=0):
        return self.scalar(slot, flatbuffers.number_types.Uint8Flags, default)

    def i8(self, slot, default=0):
        return self.scalar(slot, flatbuffers.number_types.Int8Flags, default)

    def i32(self, slot, default=0):
        return self.scalar(slot, flatbuffers.number_types.Int32Flags, default)

    def u32(self, slot, default=0):
        return self.scalar(slot, flatbuffers.number_types.Uint32Flags, default)

    def u64(self, slot, default=0):
        return self.scalar(slot, flatbuffers.number_types.Uint64Flags, default)

    def f32(self, slot, default=0.0):
        return self.scalar(slot, flatbuffers.number_types.Float32Flags, default)

    def boolean(self, slot, default=False):
        return bool(self.scalar(slot, flatbuffers.number_types.BoolFlags, default))

    def string(self, slot) -> str | None:
        o = self._off(slot)
        if not o:
            return None
        return self.tab.String(o + self.tab.Pos).decode("utf-8", "replace")

    def table(self, slot) -> "_T | None":
        o = self._off(slot)
        if not o:
            return None
        return _T(self.tab.Bytes, self.tab.Indirect(o + self.tab.Pos))

    def vec_len(self, slot) -> int:
        o = self._off(slot)
        return self.tab.VectorLen(o) if o else 0

    def vec_numpy(self, slot, dtype) -> np.ndarray:
        o = self._off(slot)
        if not o:
            return np.zeros(0, dtype)
        n = self.tab.VectorLen(o)
        start = self.tab.Vector(o)
        return np.frombuffer(self.tab.Bytes, dtype=np.dtype(dtype).newbyteorder("<"), count=n,
                             offset=start).copy()

    def vec_tables(self, slot) -> list["_T"]:
        o = self._off(slot)
        if not o:
            return []
        n = self.tab.VectorLen(o)
        start = self.tab.Vector(o)
        return [_T(self.tab.Bytes, self.tab.Indirect(start + 4 * i)) for i in range(n)]


# --------------------------------------------------------------------------------------------
# Parsed model description (plain Python)
# --------------------------------------------------------------------------------------------

@dataclass
class TensorInfo:
    index: int
    name: str
    shape: tuple[int, ...]
    dtype: np.dtype
    buffer: int
    scale: np.ndarray | None = None
    zero_point: np.ndarray | None = None
    quantized_dimension: int = 0
    sparsity: _T | None = None


@dataclass
class OpInfo:
    index: int
    name: str
    inputs: list[int]
    outputs: list[int]
    options: _T | None
    options_type: int = 0


@dataclass
class ParsedModel:
    tensors: list[TensorInfo]
    ops: list[OpInfo]
    inputs: list[int]
    outputs: list[int]
    constants: dict[int, np.ndarray] = field(default_factory=dict)
    description: str = ""

    def op_names(self) -> list[str]:
        return [o.name for o in self.ops]


def parse_tflite(data: bytes) -> ParsedModel:
    """Parse the first subgraph of a TFLite flatbuffer into tensors, ops and raw constants."""
    buf = bytearray(data)
    if len(buf) < 8 or bytes(buf[4:8]) != b"TFL3":
        raise TFLiteFormatError("not a TFLite flatbuffer (missing 'TFL3' identifier)")
    root = _T(buf, flatbuffers.encode.Get(flatbuffers.packer.uoffset, buf, 0))
    opcodes = []
    for oc in root.vec_tables(1):
        code = max(oc.i8(0), oc.i32(3))
        if code == 32:
            opcodes.append("CUSTOM:" + (oc.string(1) or "?"))
        else:
            opcodes.append(BUILTIN_OPS.get(code, f"BUILTIN_{code}"))
    subgraphs = root.vec_tables(2)
    if not subgraphs:
        raise TFLiteFormatError("model has no subgraph")
    sg = subgraphs[0]
    buffers = root.vec_tables(4)

    tensors: list[TensorInfo] = []
    constants: dict[int, np.ndarray] = {}
    for i, t in enumerate(sg.vec_tables(0)):
        ttype = t.i8(1)
        if ttype not in TENSOR_TYPES:
            raise TFLiteFormatError(f"tensor {i} has unsupported type code {ttype}")
        info = TensorInfo(index=i, name=t.string(3) or f"t{i}",
                          shape=tuple(int(s) for s in t.vec_numpy(0, np.int32)),
                          dtype=TENSOR_TYPES[ttype], buffer=int(t.u32(2)))
        q = t.table(4)
        if q is not None and q.vec_len(2):
            info.scale = q.vec_numpy(2, np.float32)
            info.zero_point = q.vec_numpy(3, np.int64)
            info.quantized_dimension = int(q.i32(6))
        info.sparsity = t.table(6)
        tensors.append(info)
        if 0 < info.buffer < len(buffers):
            b = buffers[info.buffer]
            raw: np.ndarray | None = None
            if b.vec_len(0):
                raw = b.vec_numpy(0, np.uint8)
            elif b.u64(1) > 1:  # data stored after the flatbuffer (large models)
                off, size = int(b.u64(1)), int(b.u64(2))
                raw = np.frombuffer(bytes(buf[off:off + size]), np.uint8).copy()
            if raw is not None and raw.size:
                arr = raw.view(info.dtype.newbyteorder("<")).astype(info.dtype)
                if info.sparsity is None:
                    arr = arr.reshape(info.shape)
                constants[i] = arr

    ops: list[OpInfo] = []
    for k, o in enumerate(sg.vec_tables(3)):
        ops.append(OpInfo(index=k, name=opcodes[o.u32(0)],
                          inputs=[int(x) for x in o.vec_numpy(1, np.int32)],
                          outputs=[int(x) for x in o.vec_numpy(2, np.int32)],
                          options=o.table(4), options_type=int(o.u8(3))))
    return ParsedModel(tensors=tensors, ops=ops,
                       inputs=[int(x) for x in sg.vec_numpy(1, np.int32)],
                       outputs=[int(x) for x in sg.vec_numpy(2, np.int32)],
                       constants=constants, description=root.string(3) or "")


# --------------------------------------------------------------------------------------------
# Constant helpers: dequantise, densify
# --------------------------------------------------------------------------------------------

def _index_vector(dm: _T, type_slot: int, value_slot: int) -> np.ndarray:
    """A SparseIndexVector union (Int32Vector=1, Uint16Vector=2, Uint8Vector=3) as int64."""
    kind = dm.u8(type_slot)
    tab = dm.table(value_slot)
    if kind == 0 or tab is None:
        return np.zeros(0, np.int64)
    dtype = {1: np.int32, 2: np.uint16, 3: np.uint8}.get(kind)
    if dtype is None:
        raise TFLiteFormatError(f"unknown sparse index vector type {kind}")
    return tab.vec_numpy(0, dtype).astype(np.int64)


def densify(values: np.ndarray, shape: tuple[int, ...], sparsity: _T) -> np.ndarray:
    """Expand a TFLite sparse tensor (CSR levels + optional blocks) into a dense array.

    The sparsity parameters give a traversal order over the (blocked) dimensions, with one
    DimensionMetadata per traversal level: DENSE levels enumerate ``dense_size`` indices,
    SPARSE_CSR levels take ``array_indices[segments[p]:segments[p+1]]`` for parent position p.
    Values are stored in traversal order. Implemented level by level, vectorised.
    """
    traversal = [int(x) for x in sparsity.vec_numpy(0, np.int32)]
    block_map = [int(x) for x in sparsity.vec_numpy(1, np.int32)]
    dims = sparsity.vec_tables(2)
    rank = len(shape)
    if not traversal:
        traversal = list(range(rank))
    if len(dims) != len(traversal):
        raise TFLiteFormatError("sparsity: dim_metadata and traversal_order differ in length")
    n_levels = len(traversal)
    # indices[level] for every stored value, built up level by level; prev = position in parent
    idx_cols: list[np.ndarray] = []
    prev = np.zeros(1, np.int64)
    for level, dm in enumerate(dims):
        fmt = dm.i8(0)
        if fmt == 0:  # DENSE
            size = int(dm.i32(1))
            rep = np.repeat(prev, size)
            sub = np.tile(np.arange(size, dtype=np.int64), prev.size)
            idx_cols = [np.repeat(c, size) for c in idx_cols]
            idx_cols.append(sub)
            prev = rep * size + sub
        elif fmt == 1:  # SPARSE_CSR
            segs = _index_vector(dm, 2, 3)
            inds = _index_vector(dm, 4, 5)
            starts, ends = segs[prev], segs[prev + 1]
            counts = ends - starts
            total = int(counts.sum())
            parent = np.repeat(np.arange(prev.size), counts)
            pos = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts) \
                + np.repeat(starts, counts)
            idx_cols = [c[parent] for c in idx_cols]
            idx_cols.append(inds[pos])
            prev = pos
        else:
            raise TFLiteFormatError(f"sparsity: unknown dimension format {fmt}")
    n_values = idx_cols[0].size if idx_cols else 0
    if n_values != values.size:
        raise TFLiteFormatError(f"sparsity: {values.size} stored values but traversal yields {n_values}")
    orig = [None] * rank
    for level in range(rank):
        orig[traversal[level]] = idx_cols[level].copy()
    for level in range(rank, n_levels):
        b = traversal[level] - rank
        d = block_map[b]
        block_size = int(dims[level].i32(1))
        orig[d] = orig[d] * block_size + idx_cols[level]
    out = np.zeros(shape, values.dtype)
    out[tuple(orig)] = values.reshape(-1)
    return out


def dequantize(arr: np.ndarray, t: TensorInfo) -> np.ndarray:
    if arr.dtype in (np.float16, np.float64, np.float32):
        return arr.astype(np.float32)
    if t.scale is None:
        return arr.astype(np.float32)
    scale, zp = t.scale.astype(np.float32), t.zero_point.astype(np.float32)
    if scale.size > 1:
        shp = [1] * arr.ndim
        shp[t.quantized_dimension] = -1
        scale, zp = scale.reshape(shp), zp.reshape(shp)
    return ((arr.astype(np.float32) - zp) * scale).astype(np.float32)


# --------------------------------------------------------------------------------------------
# Layout helpers (rank-4 activations live in NCHW inside the module)
# --------------------------------------------------------------------------------------------

def _nhwc_to_nchw(x: torch.Tensor) -> torch.Tensor:
    return x.permute(0, 3, 1, 2) if x.dim() == 4 else x


def _nchw_to_nhwc(x: torch.Tensor) -> torch.Tensor:
    return x.permute(0, 2, 3, 1) if x.dim() == 4 else x


_AXIS_NHWC_TO_NCHW = {0: 0, 1: 2, 2: 3, 3: 1}


def _same_pad(size: int, k: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """TFLite SAME padding: output = ceil(in/stride); extra padding goes after (bottom/right)."""
    out = (size + stride - 1) // stride
    eff = (k - 1) * dilation + 1
    total = max((out - 1) * stride + eff - size, 0)
    return total // 2, total - total // 2


def _activation(code: int) -> Callable[[torch.Tensor], torch.Tensor] | None:
    if code == 0:
        return None
    if code == 1:
        return torch.relu
    if code == 2:
        return lambda x: torch.clamp(x, -1.0, 1.0)
    if code == 3:
        return lambda x: torch.clamp(x, 0.0, 6.0)
    if code == 4:
        return torch.tanh
    raise UnsupportedOpError(f"fused activation {_ACTIVATIONS.get(code, code)} is not supported")


def _resize_bilinear_legacy(x: torch.Tensor, oh: int, ow: int) -> torch.Tensor:
    """TF bilinear with align_corners=False, half_pixel_centers=False: src = dst * in/out."""
    n, c, h, w = x.shape

    def axis(out, size):
        src = torch.arange(out, dtype=torch.float32, device=x.device) * (size / out)
        lo = torch.floor(src).long().clamp(0, size - 1)
        hi = (lo + 1).clamp(max=size - 1)
        return lo, hi, (src - lo.float())

    y0, y1, fy = axis(oh, h)
    x0, x1, fx = axis(ow, w)
    top = x[:, :, y0, :]
    bot = x[:, :, y1, :]
    fy = fy.view(1, 1, -1, 1)
    rows = top + (bot - top) * fy
    left, right = rows[:, :, :, x0], rows[:, :, :, x1]
    return left + (right - left) * fx.view(1, 1, 1, -1)


# --------------------------------------------------------------------------------------------
# The module
# --------------------------------------------------------------------------------------------

_FOLDABLE = {"DEQUANTIZE", "DENSIFY", "RESHAPE"}


class TFLiteModel(torch.nn.Module):
    """A TFLite graph executed with torch ops. Weights are buffers converted at load.

    ``forward(*inputs)`` takes float tensors in the TFLite input layout (NHWC for images) and
    returns a tuple of outputs in the TFLite output layout.
    """

    def __init__(self, path: str | Path | bytes, device: str | torch.device = "cpu",
                 outputs: list[str] | None = None):
        """``outputs``: tensor names (or unique name prefixes) to return instead of the graph's
        own outputs, e.g. an inner feature map; operators they do not depend on are skipped."""
        super().__init__()
        data = path if isinstance(path, (bytes, bytearray)) else Path(path).read_bytes()
        self.source = "<bytes>" if isinstance(path, (bytes, bytearray)) else str(path)
        self.requested_outputs = None if outputs is None else list(outputs)
        pm = parse_tflite(data)
        self.parsed = pm
        self.device = torch.device(device)
        self._consts: dict[int, np.ndarray] = {}
        for i, arr in pm.constants.items():
            self._consts[i] = arr
        self._steps: list[tuple[Callable, list[int], list[int]]] = []
        self._const_id = 0
        self.op_counts: dict[str, int] = {}
        for op in pm.ops:
            self.op_counts[op.name] = self.op_counts.get(op.name, 0) + 1
            if self._try_fold(op):
                continue
            fn = self._build(op)
            self._steps.append((fn, op.inputs, op.outputs))
        self.input_indices = list(pm.inputs)
        self.output_indices = list(pm.outputs) if outputs is None else [self._tensor_index(n) for n in outputs]
        if outputs is not None:
            self._steps = _prune(self._steps, self.output_indices)
        self.input_shapes = [pm.tensors[i].shape for i in pm.inputs]
        self.output_names = [pm.tensors[i].name for i in pm.outputs]
        # free the numpy constants now that they live in torch buffers
        self._consts = {k: v for k, v in self._consts.items() if k in self.output_indices}
        self.to(self.device)
        self.eval()
        self._traced: torch.jit.ScriptModule | None = None

    def _tensor_index(self, name: str) -> int:
        """The index of the operator output named ``name`` (exactly, or as a unique prefix)."""
        produced = [o for _fn, _ins, outs in self._steps for o in outs]
        exact = [i for i in produced if self.parsed.tensors[i].name == name]
        hits = exact or [i for i in produced if self.parsed.tensors[i].name.startswith(name)]
        if len(hits) != 1:
            raise ValueError(f"{len(hits)} computed tensors are named {name!r} in {self.source}")
        return hits[0]

    # ---- constants ----------------------------------------------------------------------
    def _const(self, idx: int) -> np.ndarray | None:
        if idx < 0:
            return None
        arr = self._consts.get(idx)
        if arr is None:
            return None
        t = self.parsed.tensors[idx]
        if t.sparsity is not None and arr.shape != t.shape:
            arr = densify(arr, t.shape, t.sparsity)
            self._consts[idx] = arr
        return arr

    def _float_const(self, idx: int) -> np.ndarray:
        arr = self._const(idx)
        if arr is None:
            raise UnsupportedOpError(f"tensor {self.parsed.tensors[idx].name!r} must be a constant")
        return dequantize(arr, self.parsed.tensors[idx])

    def _register(self, arr: np.ndarray | torch.Tensor) -> str:
        name = f"c{self._const_id}"
        self._const_id += 1
        t = torch.as_tensor(np.ascontiguousarray(arr)) if isinstance(arr, np.ndarray) else arr
        self.register_buffer(name, t.contiguous(), persistent=True)
        return name

    def _try_fold(self, op: OpInfo) -> bool:
        """Evaluate an op at load time when all its inputs are constants."""
        if op.name not in _FOLDABLE:
            return False
        ins = [self._const(i) for i in op.inputs if i >= 0]
        if any(a is None for a in ins):
            return False
        out_t = self.parsed.tensors[op.outputs[0]]
        if op.name == "DEQUANTIZE":
            res = dequantize(ins[0], self.parsed.tensors[op.inputs[0]])
        elif op.name == "DENSIFY":
            res = ins[0]  # _const already densified it
        else:  # RESHAPE
            res = ins[0].reshape(out_t.shape)
        self._consts[op.outputs[0]] = np.asarray(res).reshape(out_t.shape) if out_t.shape else res
        return True

    def _operand(self, idx: int, like_rank4: bool) -> Callable[[dict], torch.Tensor]:
        """A getter for an op input: runtime value or constant (converted to NCHW if needed)."""
        arr = self._const(idx)
        if arr is None:
            return lambda env, i=idx: env[i]
        a = dequantize(arr, self.parsed.tensors[idx]) if arr.dtype != np.int32 else arr
        if like_rank4 and a.ndim <= 4:
            a = a.reshape((1,) * (4 - a.ndim) + a.shape).transpose(0, 3, 1, 2)
        name = self._register(a)
        return lambda env, n=name: getattr(self, n)

    # ---- op builders --------------------------------------------------------------------
    def _build(self, op: OpInfo) -> Callable:
        builder = getattr(self, "_op_" + op.name, None)
        if builder is None:
            raise UnsupportedOpError(
                f"TFLite operator {op.name} (op #{op.index}) is not supported by ml.runtime.tflite "
                f"(model {self.source})")
        return builder(op)

    def _rank(self, idx: int) -> int:
        return len(self.parsed.tensors[idx].shape)

    def _op_CONV_2D(self, op: OpInfo):
        o = op.options
        padding, sw, sh = o.i8(0), o.i32(1, 1), o.i32(2, 1)
        act = _activation(o.i8(3))
        dw, dh = o.i32(4, 1), o.i32(5, 1)
        w = self._float_const(op.inputs[1]).transpose(0, 3, 1, 2)  # OHWI -> OIHW
        b = self._float_const(op.inputs[2]) if len(op.inputs) > 2 and op.inputs[2] >= 0 else None
        ih, iw = self.parsed.tensors[op.inputs[0]].shape[1:3]
        cin = self.parsed.tensors[op.inputs[0]].shape[3]
        groups = cin // w.shape[1]
        return self._conv(w, b, ih, iw, sh, sw, dh, dw, padding, act, groups)

    def _op_DEPTHWISE_CONV_2D(self, op: OpInfo):
        o = op.options
        padding, sw, sh = o.i8(0), o.i32(1, 1), o.i32(2, 1)
        act = _activation(o.i8(4))
        dw, dh = o.i32(5, 1), o.i32(6, 1)
        w = self._float_const(op.inputs[1])  # 1, H, W, Cin*M
        w = w.transpose(3, 0, 1, 2)  # Cin*M, 1, H, W
        b = self._float_const(op.inputs[2]) if len(op.inputs) > 2 and op.inputs[2] >= 0 else None
        ih, iw, cin = self.parsed.tensors[op.inputs[0]].shape[1:4]
        return self._conv(w, b, ih, iw, sh, sw, dh, dw, padding, act, groups=cin)

    def _conv(self, w, b, ih, iw, sh, sw, dh, dw, padding, act, groups):
        kh, kw = w.shape[2], w.shape[3]
        wn = self._register(w.astype(np.float32))
        bn = self._register(b.astype(np.float32)) if b is not None else None
        pad4 = None
        if padding == 0:  # SAME
            pt, pb = _same_pad(ih, kh, sh, dh)
            pl, pr = _same_pad(iw, kw, sw, dw)
            if pt == pb and pl == pr:
                conv_pad = (pt, pl)
            else:
                conv_pad, pad4 = (0, 0), (pl, pr, pt, pb)
        else:
            conv_pad = (0, 0)
        stride, dil = (sh, sw), (dh, dw)

        def run(env, ins):
            x = env[ins[0]]
            if pad4 is not None:
                x = F.pad(x, pad4)
            y = F.conv2d(x, getattr(self, wn), getattr(self, bn) if bn else None,
                         stride, conv_pad, dil, groups)
            return act(y) if act else y
        return run

    def _pool(self, op: OpInfo, kind: str):
        o = op.options
        padding, sw, sh, fw, fh = o.i8(0), o.i32(1, 1), o.i32(2, 1), o.i32(3, 1), o.i32(4, 1)
        act = _activation(o.i8(5))
        ih, iw = self.parsed.tensors[op.inputs[0]].shape[1:3]
        pt, pb = _same_pad(ih, fh, sh) if padding == 0 else (0, 0)
        pl, pr = _same_pad(iw, fw, sw) if padding == 0 else (0, 0)

        def run(env, ins):
            x = env[ins[0]]
            if kind == "max":
                if pt or pb or pl or pr:
                    x = F.pad(x, (pl, pr, pt, pb), value=float("-inf"))
                y = F.max_pool2d(x, (fh, fw), (sh, sw))
            else:  # TFLite averages over the valid (unpadded) cells only
                if pt or pb or pl or pr:
                    ones = torch.ones_like(x[:1, :1])
                    x = F.pad(x, (pl, pr, pt, pb))
                    cnt = F.avg_pool2d(F.pad(ones, (pl, pr, pt, pb)), (fh, fw), (sh, sw))
                    y = F.avg_pool2d(x, (fh, fw), (sh, sw)) / cnt
                else:
                    y = F.avg_pool2d(x, (fh, fw), (sh, sw))
            return act(y) if act else y
        return run

    def _op_MAX_POOL_2D(self, op):
        return self._pool(op, "max")

    def _op_AVERAGE_POOL_2D(self, op):
        return self._pool(op, "avg")

    def _binary(self, op: OpInfo, fn, act_slot: int | None = 0):
        act = _activation(op.options.i8(act_slot)) if (op.options is not None and act_slot is not None) else None
        r4 = self._rank(op.outputs[0]) == 4
        a = self._operand(op.inputs[0], r4)
        b = self._operand(op.inputs[1], r4)

        def run(env, ins):
            y = fn(a(env), b(env))
            return act(y) if act else y
        return run

    def _op_ADD(self, op):
        return self._binary(op, torch.add)

    def _op_MUL(self, op):
        return self._binary(op, torch.mul)

    def _op_SUB(self, op):
        return self._binary(op, torch.sub)

    def _op_DIV(self, op):
        return self._binary(op, torch.div)

    def _op_MAXIMUM(self, op):
        return self._binary(op, torch.maximum, None)

    def _op_MINIMUM(self, op):
        return self._binary(op, torch.minimum, None)

    def _unary(self, fn):
        return lambda env, ins: fn(env[ins[0]])

    def _op_LOGISTIC(self, op):
        return self._unary(torch.sigmoid)

    def _op_RELU(self, op):
        return self._unary(torch.relu)

    def _op_RELU6(self, op):
        return self._unary(lambda x: torch.clamp(x, 0.0, 6.0))

    def _op_RELU_N1_TO_1(self, op):
        return self._unary(lambda x: torch.clamp(x, -1.0, 1.0))

    def _op_TANH(self, op):
        return self._unary(torch.tanh)

    def _op_HARD_SWISH(self, op):
        return self._unary(lambda x: x * torch.clamp(x + 3.0, 0.0, 6.0) / 6.0)

    def _op_PRELU(self, op):
        r4 = self._rank(op.outputs[0]) == 4
        alpha = self._operand(op.inputs[1], r4)
        return lambda env, ins: torch.where(env[ins[0]] >= 0, env[ins[0]], env[ins[0]] * alpha(env))

    def _op_DEQUANTIZE(self, op):
        t = self.parsed.tensors[op.inputs[0]]
        if t.scale is not None and t.dtype not in (np.float16, np.float32):
            zp, sc = float(t.zero_point[0]), float(t.scale[0])
            return self._unary(lambda x: (x.float() - zp) * sc)
        return self._unary(lambda x: x.float())

    def _op_DENSIFY(self, op):
        raise UnsupportedOpError("DENSIFY of a non-constant tensor is not supported")

    def _op_PAD(self, op):
        pads = self._const(op.inputs[1])
        if pads is None:
            raise UnsupportedOpError("PAD with non-constant paddings is not supported")
        pads = [tuple(int(v) for v in p) for p in pads]
        if len(pads) == 4:
            (_, _), (pt, pb), (pl, pr), (cb, ca) = pads
            if pads[0] != (0, 0):
                raise UnsupportedOpError("PAD on the batch axis is not supported")
            spec = (pl, pr, pt, pb, cb, ca)
        else:
            spec = tuple(v for p in reversed(pads) for v in p)
        value = 0.0
        if op.name == "PADV2" and len(op.inputs) > 2:
            value = float(self._float_const(op.inputs[2]).reshape(-1)[0])
        return lambda env, ins: F.pad(env[ins[0]], spec, value=value)

    def _op_PADV2(self, op):
        return self._op_PAD(op)

    def _op_RESHAPE(self, op):
        out_shape = self.parsed.tensors[op.outputs[0]].shape
        in_r4 = self._rank(op.inputs[0]) == 4
        out_r4 = len(out_shape) == 4

        def run(env, ins):
            x = env[ins[0]]
            if in_r4:
                x = _nchw_to_nhwc(x)
            x = x.reshape(out_shape)
            return _nhwc_to_nchw(x) if out_r4 else x
        return run

    def _op_CONCATENATION(self, op):
        o = op.options
        axis, act = o.i32(0), _activation(o.i8(1))
        rank = self._rank(op.outputs[0])
        if axis < 0:
            axis += rank
        if rank == 4:
            axis = _AXIS_NHWC_TO_NCHW[axis]
        getters = [self._operand(i, rank == 4) for i in op.inputs]

        def run(env, ins):
            y = torch.cat([g(env) for g in getters], dim=axis)
            return act(y) if act else y
        return run

    def _op_RESIZE_BILINEAR(self, op):
        o = op.options
        align = o.boolean(2) if o is not None else False
        half = o.boolean(3) if o is not None else False
        size = self._const(op.inputs[1])
        if size is None:
            raise UnsupportedOpError("RESIZE_BILINEAR with a non-constant size is not supported")
        oh, ow = int(size[0]), int(size[1])
        if align:
            return lambda env, ins: F.interpolate(env[ins[0]], (oh, ow), mode="bilinear", align_corners=True)
        if half:
            return lambda env, ins: F.interpolate(env[ins[0]], (oh, ow), mode="bilinear", align_corners=False)
        return lambda env, ins: _resize_bilinear_legacy(env[ins[0]], oh, ow)

    def _op_RESIZE_NEAREST_NEIGHBOR(self, op):
        size = self._const(op.inputs[1])
        o = op.options
        if o is not None and (o.boolean(0) or o.boolean(1)):
            raise UnsupportedOpError("RESIZE_NEAREST_NEIGHBOR with align_corners/half_pixel_centers")
        oh, ow = int(size[0]), int(size[1])
        return lambda env, ins: F.interpolate(env[ins[0]], (oh, ow), mode="nearest")

    def _op_DEPTH_TO_SPACE(self, op):
        bs = op.options.i32(0)

        def run(env, ins):  # TF DCR order: channel index = (i*bs + j)*C + c
            x = env[ins[0]]
            n, c, h, w = x.shape
            co = c // (bs * bs)
            x = x.reshape(n, bs, bs, co, h, w).permute(0, 3, 4, 1, 5, 2)
            return x.reshape(n, co, h * bs, w * bs)
        return run

    def _op_FULLY_CONNECTED(self, op):
        o = op.options
        act = _activation(o.i8(0)) if o is not None else None
        keep = o.boolean(2) if o is not None else False
        wn = self._register(self._float_const(op.inputs[1]))
        bn = None
        if len(op.inputs) > 2 and op.inputs[2] >= 0:
            bn = self._register(self._float_const(op.inputs[2]))
        in_r4 = self._rank(op.inputs[0]) == 4
        out_shape = self.parsed.tensors[op.outputs[0]].shape

        def run(env, ins):
            x = env[ins[0]]
            if in_r4:
                x = _nchw_to_nhwc(x)
            w = getattr(self, wn)
            y = F.linear(x.reshape(-1, w.shape[1]), w, getattr(self, bn) if bn else None)
            if keep:
                y = y.reshape(out_shape)
            return act(y) if act else y
        return run

    def _op_SOFTMAX(self, op):
        beta = op.options.f32(0, 1.0) if op.options is not None else 1.0
        r4 = self._rank(op.inputs[0]) == 4
        return lambda env, ins: torch.softmax(env[ins[0]] * beta, dim=1 if r4 else -1)

    # ---- execution ------------------------------------------------------------------------
    def run_graph(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        env: dict[int, torch.Tensor] = {}
        for idx, x in zip(self.input_indices, inputs):
            env[idx] = _nhwc_to_nchw(x.to(self.device, torch.float32))
        for fn, ins, outs in self._steps:
            env[outs[0]] = fn(env, ins)
        outs = []
        for idx in self.output_indices:
            if idx in env:
                outs.append(_nchw_to_nhwc(env[idx]).contiguous())
            else:  # an output that folded to a constant
                outs.append(torch.as_tensor(self._consts[idx], device=self.device))
        return tuple(outs)

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        if self._traced is not None:
            return self._traced(*inputs)
        return self.run_graph(*inputs)

    def enable_trace(self) -> None:
        """Replace the Python op loop with a ``torch.jit.trace`` of it (fixed input shapes)."""
        self._traced = None

        class _Wrap(torch.nn.Module):
            def __init__(self, m):
                super().__init__()
                self.m = m

            def forward(self, *xs):
                return self.m.run_graph(*xs)

        examples = tuple(torch.zeros(s, device=self.device) for s in self.input_shapes)

        def build():
            from ml.fastpath import tracing
            with torch.inference_mode(False), torch.no_grad(), tracing():
                traced = torch.jit.trace(_Wrap(self), examples, check_trace=False)
                return torch.jit.freeze(traced.eval())

        if self.source == "<bytes>":
            self._traced = build()
        else:       # the frozen graph of an earlier start, when the on-disk cache has it
            from ml import graph_cache
            key = _trace_key(self.source, self.device, self.input_shapes, self.requested_outputs)
            self._traced, _hit = graph_cache.cached(key, self.device, build)
        from ml.fastpath import settle
        settle(self._traced, *examples)

    def predict(self, *inputs: np.ndarray | torch.Tensor) -> tuple[np.ndarray, ...]:
        """Convenience: numpy in (TFLite layout), numpy out, under ``torch.inference_mode``."""
        return _predict(self, self.device, inputs)


def _trace_key(source: str, device: torch.device, input_shapes, outputs: list[str] | None) -> str:
    """The graph-cache key of a file's traced graph: what the file is (its SHA-256, hence its
    input shapes and tensors), the outputs asked for by name, this module's code, the device."""
    import sys

    from ml import graph_cache
    from ml.weights import sha256_file
    return graph_cache.graph_key(f"tflite-{Path(source).stem}", weights_sha256=sha256_file(source),
                                 device=device, shapes=input_shapes, code=(sys.modules[__name__],),
                                 outputs=outputs)


class TracedTFLite:
    """A TFLite file's frozen graph loaded from the on-disk cache, with :class:`TFLiteModel`'s
    ``predict``: the file is neither parsed nor converted (BlazePose: saves ~0.3 s a start)."""

    def __init__(self, graph: torch.jit.ScriptModule, device: torch.device, input_shapes):
        self.graph = graph
        self.device = device
        self.input_shapes = [tuple(s) for s in input_shapes]

    def __call__(self, *xs: torch.Tensor):
        return self.graph(*xs)

    def predict(self, *inputs: np.ndarray | torch.Tensor) -> tuple[np.ndarray, ...]:
        return _predict(self.graph, self.device, inputs)


def _predict(run: Callable, device: torch.device, inputs) -> tuple[np.ndarray, ...]:
    """numpy (or tensors) in, in the TFLite layout; numpy out; under ``torch.inference_mode``."""
    with torch.inference_mode():
        xs = [torch.as_tensor(np.asarray(x, np.float32)) if not isinstance(x, torch.Tensor) else x
              for x in inputs]
        outs = run(*[x.to(device) for x in xs])
    return tuple(o.float().cpu().numpy() for o in outs)


def load_traced(path: str | Path, device: str | torch.device, input_shapes,
                outputs: list[str] | None = None) -> TracedTFLite | None:
    """The frozen graph an earlier :meth:`TFLiteModel.enable_trace` of ``path`` stored, or None
    (not cached, cache off, damaged, or ``input_shapes`` not the file's: then build it with
    ``TFLiteModel(path, device, outputs).enable_trace()``, which stores it)."""
    from ml import graph_cache
    from ml.fastpath import settle
    device = torch.device(device)
    graph = graph_cache.load(_trace_key(str(path), device, input_shapes, outputs), device)
    if graph is None:
        return None
    settle(graph, *(torch.zeros(s, device=device) for s in input_shapes))
    return TracedTFLite(graph, device, input_shapes)


def _prune(steps: list, wanted: list[int]) -> list:
    """The steps needed to compute the tensors ``wanted``, in their original order."""
    need, keep = set(wanted), []
    for step in reversed(steps):
        if need & set(step[2]):
            keep.append(step)
            need.update(i for i in step[1] if i >= 0)
    return keep[::-1]


def load_tflite(path: str | Path, device: str | torch.device = "cpu") -> TFLiteModel:
    return TFLiteModel(path, device)
