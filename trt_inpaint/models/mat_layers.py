"""MAT building blocks (StyleGAN2-style layers) in plain torch ops: no custom CUDA kernels.

``bias_act``, ``upfirdn2d`` and the resampling convolution follow the reference (non-CUDA) paths of
the StyleGAN2-ADA ops that MAT uses, so results equal the original's CPU fallback. Modulated
convolutions scale the activations instead of building per-sample weights (the "non-fused" form): the
same maths, but batch-agnostic, so ONNX export keeps a dynamic batch. Small reductions whose eps
underflows in fp16 are done in fp32.
"""

from __future__ import annotations

import enum
import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

LRELU_ALPHA = 0.2
LRELU_GAIN = math.sqrt(2.0)
RESAMPLE_TAPS = (1.0, 3.0, 3.0, 1.0)


class Activation(str, enum.Enum):
    LINEAR = "linear"
    LRELU = "lrelu"


class NoiseMode(str, enum.Enum):
    """Per-pixel noise of the second-stage style convs. NONE: no noise (as IOPaint runs MAT).
    CONST: the stored ``noise_const * noise_strength`` (deterministic). Random noise is not offered."""

    NONE = "none"
    CONST = "const"


def default_resample_filter() -> Tensor:
    """The normalised 4x4 outer product of (1, 3, 3, 1): the value of every ``resample_filter`` buffer."""
    f = torch.tensor(RESAMPLE_TAPS, dtype=torch.float32)
    f = torch.outer(f, f)
    return f / f.sum()


def bias_act(x: Tensor, b: Tensor | None, act: Activation, dim: int = 1, gain: float | None = None) -> Tensor:
    """x + b (along ``dim``), activation, gain (default: sqrt(2) for lrelu, 1 for linear)."""
    if b is not None:
        shape = [1] * x.ndim
        shape[dim] = -1
        x = x + b.reshape(shape)
    if act is Activation.LRELU:
        x = F.leaky_relu(x, LRELU_ALPHA)
        gain = LRELU_GAIN if gain is None else gain
    gain = 1.0 if gain is None else gain
    if gain != 1:
        x = x * gain
    return x


def upfirdn2d(
    x: Tensor,
    f: Tensor,
    up: int = 1,
    down: int = 1,
    pad: tuple[int, int, int, int] = (0, 0, 0, 0),
    gain: float = 1.0,
) -> Tensor:
    """Zero-insert upsample, pad (x0, x1, y0, y1; negative crops), convolve with the 2-D FIR ``f``
    (true convolution: the filter is flipped), keep every ``down``-th pixel."""
    c, h, w = int(x.shape[1]), int(x.shape[2]), int(x.shape[3])  # static under tracing; batch stays -1
    if up > 1:
        x = x.reshape(-1, c, h, 1, w, 1)
        x = F.pad(x, [0, up - 1, 0, 0, 0, up - 1])
        x = x.reshape(-1, c, h * up, w * up)
    px0, px1, py0, py1 = pad
    x = F.pad(x, [max(px0, 0), max(px1, 0), max(py0, 0), max(py1, 0)])
    if min(pad) < 0:
        x = x[:, :, max(-py0, 0) : x.shape[2] - max(-py1, 0), max(-px0, 0) : x.shape[3] - max(-px1, 0)]
    k = (f * gain).to(x.dtype).flip([0, 1])
    x = F.conv2d(x, k[None, None].repeat(c, 1, 1, 1), groups=c)
    if down > 1:
        x = x[:, :, ::down, ::down]
    return x


def upsample2d(x: Tensor, f: Tensor, up: int = 2) -> Tensor:
    """Filtered upsampling to exactly ``up`` times the size (the ToRGB skip path)."""
    fw, fh = int(f.shape[1]), int(f.shape[0])
    pad = ((fw + up - 1) // 2, (fw - up) // 2, (fh + up - 1) // 2, (fh - up) // 2)
    return upfirdn2d(x, f, up=up, pad=pad, gain=float(up * up))


def conv2d_resample(x: Tensor, w: Tensor, f: Tensor, up: int = 1, down: int = 1, padding: int = 0) -> Tensor:
    """Convolution (correlation) with optional 2x up- or downsampling through the FIR filter ``f``;
    the padding is the one of the plain convolution. Mirrors the reference op's fast paths."""
    kh, kw = int(w.shape[2]), int(w.shape[3])
    fh, fw = int(f.shape[0]), int(f.shape[1])
    if up == 1 and down == 1:
        return F.conv2d(x, w, padding=padding)
    if up > 1 and down > 1:
        raise ValueError("conv2d_resample: up and down together are not supported")
    if down > 1:
        px0 = padding + (fw - down + 1) // 2
        px1 = padding + (fw - down) // 2
        py0 = padding + (fh - down + 1) // 2
        py1 = padding + (fh - down) // 2
        if kw == 1 and kh == 1:
            x = upfirdn2d(x, f, down=down, pad=(px0, px1, py0, py1))
            return F.conv2d(x, w)
        x = upfirdn2d(x, f, pad=(px0, px1, py0, py1))
        return F.conv2d(x, w, stride=down)
    # up > 1
    px0 = padding + (fw + up - 1) // 2
    px1 = padding + (fw - up) // 2
    py0 = padding + (fh + up - 1) // 2
    py1 = padding + (fh - up) // 2
    if kw == 1 and kh == 1:
        x = F.conv2d(x, w)
        return upfirdn2d(x, f, up=up, pad=(px0, px1, py0, py1), gain=float(up * up))
    px0 -= kw - 1
    px1 -= kw - up
    py0 -= kh - 1
    py1 -= kh - up
    pxt = max(min(-px0, -px1), 0)
    pyt = max(min(-py0, -py1), 0)
    wt = w.transpose(0, 1).flip([2, 3])
    x = F.conv_transpose2d(x, wt, stride=up, padding=[pyt, pxt])
    return upfirdn2d(x, f, pad=(px0 + pxt, px1 + pxt, py0 + pyt, py1 + pyt), gain=float(up * up))


class FullyConnectedLayer(nn.Module):
    """y = act(x @ (W * lr / sqrt(in)).T + b * lr). Keys: weight (out, in), bias (out)."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        activation: Activation = Activation.LINEAR,
        lr_multiplier: float = 1.0,
        bias_init: float = 0.0,
    ):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_multiplier)
        self.bias = nn.Parameter(torch.full([out_features], float(bias_init))) if bias else None
        self.activation = Activation(activation)
        self.weight_gain = lr_multiplier / math.sqrt(in_features)
        self.bias_gain = lr_multiplier

    def forward(self, x: Tensor) -> Tensor:
        w = self.weight * self.weight_gain
        b = self.bias
        if b is not None and self.bias_gain != 1:
            b = b * self.bias_gain
        return bias_act(x.matmul(w.t()), b, self.activation, dim=x.ndim - 1)


class Conv2dLayer(nn.Module):
    """Equalised-lr conv with optional 2x up/down resampling, bias and activation.
    Keys: weight (out, in, k, k), bias (out), resample_filter (4, 4)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        bias: bool = True,
        activation: Activation = Activation.LINEAR,
        up: int = 1,
        down: int = 1,
    ):
        super().__init__()
        self.activation = Activation(activation)
        self.up = up
        self.down = down
        self.register_buffer("resample_filter", default_resample_filter())
        self.padding = kernel_size // 2
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size**2)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None

    def forward(self, x: Tensor) -> Tensor:
        w = self.weight * self.weight_gain
        x = conv2d_resample(x, w, self.resample_filter, up=self.up, down=self.down, padding=self.padding)
        return bias_act(x, self.bias, self.activation)


class ModulatedConv2d(nn.Module):
    """Style-modulated conv (optional demodulation, optional 2x upsampling). The per-sample weight
    W * s_in * d_out is applied as (conv(x * s_in, W)) * d_out: equal maths, batch-agnostic graph.
    Keys: weight (1, out, in, k, k), resample_filter (4, 4), affine.weight/bias."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        style_dim: int,
        demodulate: bool = True,
        up: int = 1,
    ):
        super().__init__()
        self.demodulate = demodulate
        self.weight = nn.Parameter(torch.randn(1, out_channels, in_channels, kernel_size, kernel_size))
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size**2)
        self.padding = kernel_size // 2
        self.up = up
        self.register_buffer("resample_filter", default_resample_filter())
        self.affine = FullyConnectedLayer(style_dim, in_channels, bias_init=1)

    def forward(self, x: Tensor, style: Tensor) -> Tensor:
        s = self.affine(style)  # (N, in)
        w = self.weight[0] * self.weight_gain  # (out, in, k, k)
        x = x * s.reshape(-1, self.in_channels, 1, 1)
        x = conv2d_resample(x, w, self.resample_filter, up=self.up, padding=self.padding)
        if self.demodulate:
            # sum over (in, k, k) of (w * s)^2 == s^2 @ sum_kk(w^2).T ; fp32: the 1e-8 underflows in fp16
            w2 = w.float().square().sum(dim=[2, 3])  # (out, in)
            d = torch.rsqrt(s.float().square() @ w2.t() + 1e-8)  # (N, out)
            x = x * d.to(x.dtype).reshape(-1, self.out_channels, 1, 1)
        return x


class StyleConv(nn.Module):
    """ModulatedConv2d + optional stored noise + bias + lrelu. Keys (use_noise): noise_strength (),
    bias (out), noise_const (res, res), conv.*"""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        style_dim: int,
        resolution: int,
        kernel_size: int = 3,
        up: int = 1,
        use_noise: bool = True,
        activation: Activation = Activation.LRELU,
        demodulate: bool = True,
        noise_mode: NoiseMode = NoiseMode.NONE,
    ):
        super().__init__()
        self.conv = ModulatedConv2d(in_channels, out_channels, kernel_size, style_dim, demodulate, up=up)
        self.use_noise = use_noise
        self.noise_mode = NoiseMode(noise_mode)
        if use_noise:
            self.register_buffer("noise_const", torch.randn(resolution, resolution))
            self.noise_strength = nn.Parameter(torch.zeros([]))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.activation = Activation(activation)

    def forward(self, x: Tensor, style: Tensor) -> Tensor:
        x = self.conv(x, style)
        if self.use_noise and self.noise_mode is NoiseMode.CONST:
            x = x + self.noise_const * self.noise_strength
        return bias_act(x, self.bias, self.activation)


class ToRGB(nn.Module):
    """1x1 modulated conv (no demodulation) + bias, plus the upsampled previous image.
    Keys: bias (out), resample_filter (4, 4), conv.*"""

    def __init__(self, in_channels: int, out_channels: int, style_dim: int, kernel_size: int = 1):
        super().__init__()
        self.conv = ModulatedConv2d(in_channels, out_channels, kernel_size, style_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.register_buffer("resample_filter", default_resample_filter())

    def forward(self, x: Tensor, style: Tensor, skip: Tensor | None = None) -> Tensor:
        out = bias_act(self.conv(x, style), self.bias, Activation.LINEAR)
        if skip is not None:
            if int(skip.shape[-1]) != int(out.shape[-1]):
                skip = upsample2d(skip, self.resample_filter)
            out = out + skip
        return out


def normalize_2nd_moment(x: Tensor, dim: int = 1, eps: float = 1e-8) -> Tensor:
    """x / sqrt(mean(x^2) + eps), computed in fp32."""
    xf = x.float()
    return (xf * (xf.square().mean(dim=dim, keepdim=True) + eps).rsqrt()).to(x.dtype)


class MappingNet(nn.Module):
    """z -> w: 2nd-moment normalisation, ``num_layers`` lrelu FC layers (lr x0.01), broadcast to
    ``num_ws`` copies, optional truncation towards ``w_avg``. Keys: fc0..fc{n-1}.weight/bias, w_avg."""

    def __init__(
        self,
        z_dim: int,
        w_dim: int,
        num_ws: int,
        num_layers: int = 8,
        lr_multiplier: float = 0.01,
    ):
        super().__init__()
        self.z_dim = z_dim
        self.w_dim = w_dim
        self.num_ws = num_ws
        self.num_layers = num_layers
        features = [z_dim] + [w_dim] * num_layers
        for i in range(num_layers):
            layer = FullyConnectedLayer(
                features[i], features[i + 1], activation=Activation.LRELU, lr_multiplier=lr_multiplier
            )
            setattr(self, f"fc{i}", layer)
        self.register_buffer("w_avg", torch.zeros(w_dim))

    def forward(self, z: Tensor, truncation_psi: float = 1.0) -> Tensor:
        x = normalize_2nd_moment(z)
        for i in range(self.num_layers):
            x = getattr(self, f"fc{i}")(x)
        x = x.unsqueeze(1).repeat(1, self.num_ws, 1)
        if truncation_psi != 1:
            x = self.w_avg.lerp(x, truncation_psi)
        return x
