"""ml.runtime.tflite: a hand-written TFLite executor in torch.

* tiny single-op models written here with the flatbuffers builder check op semantics that the
  pose models do not exercise, or exercise only one way (SAME padding with odd sizes, pools,
  resize modes, fused activations, fp16 constants), against LiteRT when it is installed;
* the real BlazePose models give the same raw outputs as LiteRT on real photos;
* an operator the runtime does not know raises an error naming it.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from ml.runtime.tflite import TFLiteModel, UnsupportedOpError, densify, parse_tflite
from tests.conftest import dev_file, require_weights

flatbuffers = pytest.importorskip("flatbuffers")

torch.set_num_threads(1)

# ---- a minimal TFLite writer (schema.fbs field order) ------------------------------------

F32, F16, I32 = 0, 1, 2
OPTION_TYPES = {"CONV_2D": 1, "DEPTHWISE_CONV_2D": 2, "AVERAGE_POOL_2D": 5, "MAX_POOL_2D": 5,
                "CONCATENATION": 10, "ADD": 11, "RESIZE_BILINEAR": 15, "MUL": 21,
                "DEPTH_TO_SPACE": 94}
CODES = {"ADD": 0, "AVERAGE_POOL_2D": 1, "CONCATENATION": 2, "CONV_2D": 3, "DEPTHWISE_CONV_2D": 4,
         "DEPTH_TO_SPACE": 5, "DEQUANTIZE": 6, "LOGISTIC": 14, "MAX_POOL_2D": 17, "MUL": 18,
         "RELU6": 21, "RESIZE_BILINEAR": 23, "HARD_SWISH": 117, "SQRT": 75, "PAD": 34}


def build_model(tensors, ops, inputs, outputs) -> bytes:
    """tensors: list of (shape, type, data-or-None); ops: list of (name, ins, outs, opts) with
    opts a list of (slot, kind, value) scalars for the builtin options table."""
    b = flatbuffers.Builder(1024)

    def vec_i32(vals):
        b.StartVector(4, len(vals), 4)
        for v in reversed(vals):
            b.PrependInt32(int(v))
        return b.EndVector()

    def vec_offsets(offs):
        b.StartVector(4, len(offs), 4)
        for o in reversed(offs):
            b.PrependUOffsetTRelative(o)
        return b.EndVector()

    # buffers: 0 is the empty sentinel
    buf_offs = []
    b.StartObject(1)
    buf_offs.append(b.EndObject())
    tensor_buf = []
    for shape, ttype, data in tensors:
        if data is None:
            tensor_buf.append(0)
            continue
        raw = np.ascontiguousarray(data).tobytes()
        b.StartVector(1, len(raw), 16)
        for byte in reversed(raw):
            b.PrependUint8(byte)
        vec = b.EndVector()
        b.StartObject(1)
        b.PrependUOffsetTRelativeSlot(0, vec, 0)
        buf_offs.append(b.EndObject())
        tensor_buf.append(len(buf_offs) - 1)

    t_offs = []
    for i, (shape, ttype, _) in enumerate(tensors):
        name = b.CreateString(f"t{i}")
        shp = vec_i32(shape)
        b.StartObject(4)
        b.PrependUOffsetTRelativeSlot(0, shp, 0)
        b.PrependInt8Slot(1, ttype, 0)
        b.PrependUint32Slot(2, tensor_buf[i], 0)
        b.PrependUOffsetTRelativeSlot(3, name, 0)
        t_offs.append(b.EndObject())

    names = []
    for name, *_ in ops:
        if name not in names:
            names.append(name)
    op_offs = []
    for name, ins, outs, opts in ops:
        opt_off = None
        if opts is not None:
            b.StartObject(8)
            for slot, kind, value in opts:
                {"i8": b.PrependInt8Slot, "i32": b.PrependInt32Slot, "bool": b.PrependBoolSlot}[kind](slot, value, 0)
            opt_off = b.EndObject()
        iv, ov = vec_i32(ins), vec_i32(outs)
        b.StartObject(5)
        b.PrependUint32Slot(0, names.index(name), 0)
        b.PrependUOffsetTRelativeSlot(1, iv, 0)
        b.PrependUOffsetTRelativeSlot(2, ov, 0)
        if opt_off is not None:
            b.PrependUint8Slot(3, OPTION_TYPES[name], 0)
            b.PrependUOffsetTRelativeSlot(4, opt_off, 0)
        op_offs.append(b.EndObject())

    code_offs = []
    for name in names:
        code = CODES[name]
        b.StartObject(4)
        b.PrependInt8Slot(0, min(code, 127), 0)
        b.PrependInt32Slot(2, 1, 0)
        b.PrependInt32Slot(3, code, 0)
        code_offs.append(b.EndObject())

    tv, iv, ov, opv = vec_offsets(t_offs), vec_i32(inputs), vec_i32(outputs), vec_offsets(op_offs)
    b.StartObject(5)
    b.PrependUOffsetTRelativeSlot(0, tv, 0)
    b.PrependUOffsetTRelativeSlot(1, iv, 0)
    b.PrependUOffsetTRelativeSlot(2, ov, 0)
    b.PrependUOffsetTRelativeSlot(3, opv, 0)
    sg = b.EndObject()
    sgv, cv, bv = vec_offsets([sg]), vec_offsets(code_offs), vec_offsets(buf_offs)
    desc = b.CreateString("studio-catalog test model")
    b.StartObject(5)
    b.PrependUint32Slot(0, 3, 0)
    b.PrependUOffsetTRelativeSlot(1, cv, 0)
    b.PrependUOffsetTRelativeSlot(2, sgv, 0)
    b.PrependUOffsetTRelativeSlot(3, desc, 0)
    b.PrependUOffsetTRelativeSlot(4, bv, 0)
    b.Finish(b.EndObject(), file_identifier=b"TFL3")
    return bytes(b.Output())


def litert_run(model: bytes, *inputs: np.ndarray) -> list[np.ndarray]:
    interp_mod = pytest.importorskip("ai_edge_litert.interpreter")
    it = interp_mod.Interpreter(model_content=model)
    it.allocate_tensors()
    for d, x in zip(it.get_input_details(), inputs):
        it.set_tensor(d["index"], x)
    it.invoke()
    return [it.get_tensor(d["index"]) for d in it.get_output_details()]


def torch_run(model: bytes, *inputs: np.ndarray) -> list[np.ndarray]:
    return list(TFLiteModel(model, "cpu").predict(*inputs))


RNG = np.random.default_rng(7)


def _rand(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


def _conv_model(h, w, cin, cout, k, stride, padding, act, depthwise=False, fp16=False):
    """One CONV_2D / DEPTHWISE_CONV_2D; with fp16=True the filter is an fp16 constant
    dequantised by a DEQUANTIZE op, as in the pose models."""
    if depthwise:
        cout = cin
        wshape = (1, k, k, cin)
        opts = [(0, "i8", padding), (1, "i32", stride), (2, "i32", stride), (3, "i32", 1), (4, "i8", act)]
    else:
        wshape = (cout, k, k, cin)
        opts = [(0, "i8", padding), (1, "i32", stride), (2, "i32", stride), (3, "i8", act)]
    if padding == 0:
        oh, ow = -(-h // stride), -(-w // stride)
    else:
        oh, ow = (h - k) // stride + 1, (w - k) // stride + 1
    wt, bias = _rand(*wshape), _rand(cout)
    ops = []
    if fp16:
        tensors = [((1, h, w, cin), F32, None), (wshape, F16, wt.astype(np.float16)), (wshape, F32, None)]
        ops.append(("DEQUANTIZE", [1], [2], None))
        w_idx = 2
    else:
        tensors = [((1, h, w, cin), F32, None), (wshape, F32, wt)]
        w_idx = 1
    tensors.append(((cout,), F32, bias))
    b_idx = len(tensors) - 1
    tensors.append(((1, oh, ow, cout), F32, None))
    out = len(tensors) - 1
    ops.append(("DEPTHWISE_CONV_2D" if depthwise else "CONV_2D", [0, w_idx, b_idx], [out], opts))
    return build_model(tensors, ops, [0], [out])


@pytest.mark.parametrize("h,w,k,stride,padding,act", [
    (9, 7, 3, 2, 0, 0),    # SAME, odd sizes: asymmetric padding (extra row/col after)
    (8, 8, 5, 2, 0, 3),    # SAME, even size, stride 2, fused RELU6
    (10, 9, 3, 1, 1, 1),   # VALID, fused RELU
    (6, 6, 1, 1, 0, 0),    # 1x1
])
@pytest.mark.parametrize("depthwise", [False, True])
def test_conv_matches_litert(h, w, k, stride, padding, act, depthwise):
    model = _conv_model(h, w, 4, 6, k, stride, padding, act, depthwise=depthwise)
    x = _rand(1, h, w, 4)
    ref, = litert_run(model, x)
    got, = torch_run(model, x)
    assert got.shape == ref.shape
    np.testing.assert_allclose(got, ref, atol=1e-4, rtol=1e-4)


def test_fp16_weights_are_dequantised():
    model = _conv_model(7, 7, 3, 5, 3, 2, 0, 0, fp16=True)
    x = _rand(1, 7, 7, 3)
    ref, = litert_run(model, x)
    got, = torch_run(model, x)
    np.testing.assert_allclose(got, ref, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("name", ["AVERAGE_POOL_2D", "MAX_POOL_2D"])
@pytest.mark.parametrize("padding", [0, 1])
def test_pools_match_litert(name, padding):
    h, w, c, k, s = 7, 6, 3, 3, 2
    oh, ow = (-(-h // s), -(-w // s)) if padding == 0 else ((h - k) // s + 1, (w - k) // s + 1)
    tensors = [((1, h, w, c), F32, None), ((1, oh, ow, c), F32, None)]
    opts = [(0, "i8", padding), (1, "i32", s), (2, "i32", s), (3, "i32", k), (4, "i32", k), (5, "i8", 0)]
    model = build_model(tensors, [(name, [0], [1], opts)], [0], [1])
    x = _rand(1, h, w, c)
    ref, = litert_run(model, x)
    got, = torch_run(model, x)
    np.testing.assert_allclose(got, ref, atol=1e-5)


@pytest.mark.parametrize("align,half", [(False, False), (True, False), (False, True)])
def test_resize_bilinear_modes_match_litert(align, half):
    tensors = [((1, 5, 7, 2), F32, None), ((2,), I32, np.array([12, 9], np.int32)),
               ((1, 12, 9, 2), F32, None)]
    opts = [(2, "bool", align), (3, "bool", half)]
    model = build_model(tensors, [("RESIZE_BILINEAR", [0, 1], [2], opts)], [0], [2])
    x = _rand(1, 5, 7, 2)
    ref, = litert_run(model, x)
    got, = torch_run(model, x)
    np.testing.assert_allclose(got, ref, atol=1e-5)


def test_elementwise_chain_matches_litert():
    """MUL with a broadcast per-channel constant, ADD of two activations with fused RELU6,
    HARD_SWISH, LOGISTIC, DEPTH_TO_SPACE and CONCATENATION on the channel axis."""
    c = 8
    scale = _rand(c)
    tensors = [
        ((1, 4, 4, c), F32, None),                 # 0 input
        ((c,), F32, scale),                        # 1 const
        ((1, 4, 4, c), F32, None),                 # 2 mul
        ((1, 4, 4, c), F32, None),                 # 3 add relu6
        ((1, 4, 4, c), F32, None),                 # 4 hard swish
        ((1, 4, 4, c), F32, None),                 # 5 logistic
        ((1, 8, 8, 2), F32, None),                 # 6 depth to space
        ((1, 8, 8, 4), F32, None),                 # 7 concat
    ]
    ops = [
        ("MUL", [0, 1], [2], [(0, "i8", 0)]),
        ("ADD", [2, 0], [3], [(0, "i8", 3)]),
        ("HARD_SWISH", [3], [4], None),
        ("LOGISTIC", [4], [5], None),
        ("DEPTH_TO_SPACE", [5], [6], [(0, "i32", 2)]),
        ("CONCATENATION", [6, 6], [7], [(0, "i32", 3), (1, "i8", 0)]),
    ]
    model = build_model(tensors, ops, [0], [7])
    x = _rand(1, 4, 4, c) * 4
    ref, = litert_run(model, x)
    got, = torch_run(model, x)
    np.testing.assert_allclose(got, ref, atol=1e-5)


def test_unknown_op_raises_naming_it():
    tensors = [((1, 4), F32, None), ((1, 4), F32, None)]
    model = build_model(tensors, [("SQRT", [0], [1], None)], [0], [1])
    with pytest.raises(UnsupportedOpError, match="SQRT"):
        TFLiteModel(model, "cpu")


def test_not_a_tflite_file_is_refused():
    with pytest.raises(ValueError, match="TFL3"):
        parse_tflite(b"\x00" * 64)


def test_densify_block_sparse_matches_dense():
    """A 4x4 matrix in block-CSR (2x2 blocks), written as TFLite sparsity parameters."""
    dense = np.array([[1, 2, 0, 0], [3, 4, 0, 0], [0, 0, 0, 0], [0, 0, 5, 6]], np.float32)
    dense[3, 3] = 6
    # traversal: block-row (dense 2), block-col (CSR), in-block row (dense 2), in-block col (dense 2)
    b = flatbuffers.Builder(256)

    def int_vec_table(vals):
        b.StartVector(4, len(vals), 4)
        for v in reversed(vals):
            b.PrependInt32(v)
        vec = b.EndVector()
        b.StartObject(1)
        b.PrependUOffsetTRelativeSlot(0, vec, 0)
        return b.EndObject()

    segs, inds = int_vec_table([0, 1, 2]), int_vec_table([0, 1])
    dims = []
    for fmt, size, s, i in [(0, 2, None, None), (1, 0, segs, inds), (0, 2, None, None), (0, 2, None, None)]:
        b.StartObject(6)
        b.PrependInt8Slot(0, fmt, 0)
        b.PrependInt32Slot(1, size, 0)
        if s is not None:
            b.PrependUint8Slot(2, 1, 0)
            b.PrependUOffsetTRelativeSlot(3, s, 0)
            b.PrependUint8Slot(4, 1, 0)
            b.PrependUOffsetTRelativeSlot(5, i, 0)
        dims.append(b.EndObject())

    def ivec(vals):
        b.StartVector(4, len(vals), 4)
        for v in reversed(vals):
            b.PrependInt32(v)
        return b.EndVector()

    trav, bmap = ivec([0, 1, 2, 3]), ivec([0, 1])
    b.StartVector(4, len(dims), 4)
    for d in reversed(dims):
        b.PrependUOffsetTRelative(d)
    dv = b.EndVector()
    b.StartObject(3)
    b.PrependUOffsetTRelativeSlot(0, trav, 0)
    b.PrependUOffsetTRelativeSlot(1, bmap, 0)
    b.PrependUOffsetTRelativeSlot(2, dv, 0)
    b.Finish(b.EndObject())
    from ml.runtime.tflite import _T
    buf = b.Output()
    sp = _T(buf, flatbuffers.encode.Get(flatbuffers.packer.uoffset, buf, 0))
    values = np.array([1, 2, 3, 4, 0, 0, 5, 6], np.float32)  # block (0,0) then block (1,1)
    np.testing.assert_array_equal(densify(values, (4, 4), sp), dense)


# ---- the real pose models on real photos --------------------------------------------------

PHOTOS = ["persons/ccp/photos/0002.jpg", "persons/mmpose_coco/000000000785.jpg",
          "persons/vton_models/049447_0.jpg"]


@pytest.fixture(scope="module")
def pose_models():
    wd = require_weights("pose_detection.tflite", "pose_landmark_full.tflite")
    return {n: TFLiteModel(wd / f"{n}.tflite", "cpu") for n in ("pose_detection", "pose_landmark_full")}


@pytest.mark.parametrize("name", ["pose_detection", "pose_landmark_full"])
def test_pose_models_parse_to_expected_graph(pose_models, name):
    m = pose_models[name]
    counts = m.op_counts
    assert counts["CONV_2D"] > 40 and counts["DEPTHWISE_CONV_2D"] > 20
    assert counts["DEQUANTIZE"] > 100  # fp16 weights
    if name == "pose_detection":
        assert counts["DENSIFY"] == 38  # sparse fp16 weights
        assert m.input_shapes == [(1, 224, 224, 3)]
    else:
        assert m.input_shapes == [(1, 256, 256, 3)]
    # all constant ops were folded at load: only real compute remains in the loop
    assert len(m._steps) == sum(counts.values()) - counts["DEQUANTIZE"] - counts.get("DENSIFY", 0)


@pytest.mark.parametrize("name,size,lo", [("pose_detection", 224, -1.0), ("pose_landmark_full", 256, 0.0)])
def test_pose_models_match_litert_on_photos(pose_models, name, size, lo):
    import cv2
    interp_mod = pytest.importorskip("ai_edge_litert.interpreter")
    wd = require_weights(f"{name}.tflite")
    it = interp_mod.Interpreter(model_path=str(wd / f"{name}.tflite"))
    it.allocate_tensors()
    for rel in PHOTOS[:2]:
        rgb = cv2.cvtColor(cv2.imread(str(dev_file(rel))), cv2.COLOR_BGR2RGB)
        x = cv2.resize(rgb, (size, size), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
        x = (x * (1.0 - lo) + lo)[None]
        it.set_tensor(it.get_input_details()[0]["index"], x)
        it.invoke()
        refs = [it.get_tensor(d["index"]) for d in it.get_output_details()]
        outs = pose_models[name].predict(x)
        assert len(outs) == len(refs)
        for ref, got in zip(refs, outs):
            assert got.shape == ref.shape
            scale = max(1.0, float(np.abs(ref).max()))
            assert float(np.abs(got - ref).max()) <= 2e-3 * scale, (rel, name, ref.shape)


def test_weights_are_module_buffers_in_torch_layout(pose_models):
    m = pose_models["pose_landmark_full"]
    assert isinstance(m, torch.nn.Module)
    bufs = dict(m.named_buffers())
    n_params = sum(b.numel() for b in bufs.values())
    assert n_params > 1_000_000  # BlazePose full has ~3.5 M weights
    assert all(b.dtype in (torch.float32, torch.int32) for b in bufs.values())
    # conv filters are OIHW (4-D, kernel dims last), not TFLite's OHWI
    convs = [b for b in bufs.values() if b.dim() == 4]
    assert convs and all(b.shape[2] == b.shape[3] for b in convs)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU")
def test_runs_on_cuda_like_on_cpu():
    wd = require_weights("pose_landmark_full.tflite")
    x = np.random.default_rng(1).uniform(0, 1, (1, 256, 256, 3)).astype(np.float32)
    cpu = TFLiteModel(wd / "pose_landmark_full.tflite", "cpu").predict(x)
    gpu_model = TFLiteModel(wd / "pose_landmark_full.tflite", "cuda")
    assert all(b.device.type == "cuda" for b in gpu_model.buffers())
    gpu = gpu_model.predict(x)
    for a, b in zip(cpu, gpu):
        assert float(np.abs(a - b).max()) <= 1e-2 * max(1.0, float(np.abs(a).max()))


def test_traced_graph_gives_the_same_outputs():
    wd = require_weights("pose_detection.tflite")
    x = np.random.default_rng(2).uniform(-1, 1, (1, 224, 224, 3)).astype(np.float32)
    m = TFLiteModel(wd / "pose_detection.tflite", "cpu")
    loop = m.predict(x)
    m.enable_trace()
    traced = m.predict(x)
    for a, b in zip(loop, traced):
        np.testing.assert_allclose(a, b, atol=1e-4, rtol=1e-4)
