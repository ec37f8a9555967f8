"""MAT first stage: partial convolutions, mask-aware Swin-like window attention, the 16x16 bottleneck
with its explicit 0/1 keep map, and the style-modulated decoder back to full size.

Masks follow MAT: 1 = known, 0 = hole. The mask path (partial-conv counts and the attention's window
validity) is kept in fp32, so a half-precision model stays finite.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from trt_inpaint.models.mat_layers import Activation, Conv2dLayer, FullyConnectedLayer, StyleConv, ToRGB

MASKED_LOGIT = -100.0  # logit offset of keys in a hole / in another shifted region (as the original)


def token2feature(x: Tensor, size: tuple[int, int]) -> Tensor:
    """(N, H*W, C) -> (N, C, H, W)."""
    return x.permute(0, 2, 1).reshape(-1, int(x.shape[2]), size[0], size[1])


def feature2token(x: Tensor) -> Tensor:
    """(N, C, H, W) -> (N, H*W, C)."""
    return x.flatten(2).transpose(1, 2)


def window_partition(x: Tensor, ws: int) -> Tensor:
    """(N, H, W, C) -> (N * nW, ws, ws, C)."""
    h, w, c = int(x.shape[1]), int(x.shape[2]), int(x.shape[3])
    x = x.reshape(-1, h // ws, ws, w // ws, ws, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, ws, ws, c)


def window_reverse(windows: Tensor, ws: int, h: int, w: int) -> Tensor:
    """(N * nW, ws, ws, C) -> (N, H, W, C)."""
    c = int(windows.shape[-1])
    x = windows.reshape(-1, h // ws, w // ws, ws, ws, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, h, w, c)


class Conv2dLayerPartial(nn.Module):
    """Partial convolution: the conv output is re-weighted by k^2 / (known count + 1e-8) where any input
    in the window is known, zeroed elsewhere; the mask becomes 1 where any input was known.
    The ratio is computed in fp32 (1e-8 underflows in fp16). Keys: conv.*"""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        activation: Activation = Activation.LINEAR,
        up: int = 1,
        down: int = 1,
    ):
        super().__init__()
        self.conv = Conv2dLayer(
            in_channels, out_channels, kernel_size, activation=activation, up=up, down=down
        )
        self.kernel_size = kernel_size
        self.slide_winsize = float(kernel_size**2)
        self.stride = down
        self.padding = kernel_size // 2 if kernel_size % 2 == 1 else 0

    def forward(self, x: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        if mask is None:
            return self.conv(x), None
        m = mask.float()
        ones = torch.ones(1, 1, self.kernel_size, self.kernel_size, dtype=torch.float32, device=m.device)
        count = F.conv2d(m, ones, stride=self.stride, padding=self.padding)
        ratio = self.slide_winsize / (count + 1e-8)
        update = torch.clamp(count, 0, 1)
        ratio = ratio * update
        return self.conv(x) * ratio.to(x.dtype), update


class WindowAttention(nn.Module):
    """Multi-head attention inside a window; q, k from the L2-normalised tokens (fp32 normalise);
    keys of hole tokens get -100; a window's tokens all become valid if any was.
    Keys: q, k, v, proj (FullyConnectedLayer)."""

    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        self.dim = dim
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.q = FullyConnectedLayer(dim, dim)
        self.k = FullyConnectedLayer(dim, dim)
        self.v = FullyConnectedLayer(dim, dim)
        self.proj = FullyConnectedLayer(dim, dim)

    def forward(
        self, x: Tensor, mask_windows: Tensor | None = None, attn_mask: Tensor | None = None
    ) -> tuple[Tensor, Tensor | None]:
        n, c, h = int(x.shape[1]), int(x.shape[2]), self.num_heads
        norm_x = F.normalize(x.float(), p=2.0, dim=-1).to(x.dtype)
        q = self.q(norm_x).reshape(-1, n, h, c // h).permute(0, 2, 1, 3)
        k = self.k(norm_x).reshape(-1, n, h, c // h).permute(0, 2, 3, 1)
        v = self.v(x).reshape(-1, n, h, c // h).permute(0, 2, 1, 3)
        attn = (q @ k) * self.scale
        if attn_mask is not None:
            nw = int(attn_mask.shape[0])
            attn = attn.reshape(-1, nw, h, n, n) + attn_mask.to(attn.dtype).unsqueeze(1).unsqueeze(0)
            attn = attn.reshape(-1, h, n, n)
        if mask_windows is not None:
            # reshape, not squeeze: a squeeze on a traced dim becomes an ONNX `If` that splits the graph
            m = mask_windows.reshape(-1, 1, 1, n)  # (B_, 1, 1, n), fp32
            bias = torch.where(
                m == 0, torch.full_like(m, MASKED_LOGIT), torch.where(m == 1, torch.zeros_like(m), m)
            )
            attn = attn + bias.to(attn.dtype)
            mask_windows = torch.clamp(torch.sum(mask_windows, dim=1, keepdim=True), 0, 1).repeat(1, n, 1)
        attn = torch.softmax(attn.float(), dim=-1).to(v.dtype)
        x = (attn @ v).transpose(1, 2).reshape(-1, n, c)
        return self.proj(x), mask_windows


def shifted_window_mask(size: int, window: int, shift: int) -> Tensor:
    """(nW, window^2, window^2) logit offsets (0 / -100) separating the regions that a cyclic shift
    brings into one window."""
    img = torch.zeros(1, size, size, 1)
    cnt = 0
    bounds = (slice(0, -window), slice(-window, -shift), slice(-shift, None))
    for hs in bounds:
        for ws in bounds:
            img[:, hs, ws, :] = cnt
            cnt += 1
    mw = window_partition(img, window).reshape(-1, window * window)
    diff = mw.unsqueeze(1) - mw.unsqueeze(2)
    return torch.where(diff != 0, torch.full_like(diff, MASKED_LOGIT), torch.zeros_like(diff))


class SwinBlock(nn.Module):
    """Window attention (cyclically shifted on odd blocks), then fuse(cat(input, attn)) and an MLP
    (no residual, no LayerNorm: as MAT). Keys: attn_mask (shifted blocks), attn.*, fuse.*, mlp.fc1/fc2."""

    def __init__(
        self, dim: int, resolution: int, num_heads: int, window_size: int, shift_size: int, mlp_ratio: float
    ):
        super().__init__()
        self.resolution = resolution
        self.window_size = window_size
        self.shift_size = shift_size
        if resolution <= window_size:
            self.shift_size = 0
            self.window_size = resolution
        self.attn = WindowAttention(dim, num_heads)
        self.fuse = FullyConnectedLayer(dim * 2, dim, activation=Activation.LRELU)
        self.mlp = nn.Module()
        self.mlp.fc1 = FullyConnectedLayer(dim, int(dim * mlp_ratio), activation=Activation.LRELU)
        self.mlp.fc2 = FullyConnectedLayer(int(dim * mlp_ratio), dim)
        if self.shift_size > 0:
            self.register_buffer(
                "attn_mask", shifted_window_mask(resolution, self.window_size, self.shift_size)
            )
        else:
            self.attn_mask = None

    def forward(
        self, x: Tensor, size: tuple[int, int], mask: Tensor | None = None
    ) -> tuple[Tensor, Tensor | None]:
        h, w = size
        c = int(x.shape[2])
        ws, s = self.window_size, self.shift_size
        shortcut = x
        x = x.reshape(-1, h, w, c)
        if mask is not None:
            mask = mask.reshape(-1, h, w, 1)
        if s > 0:
            x = torch.roll(x, shifts=(-s, -s), dims=(1, 2))
            if mask is not None:
                mask = torch.roll(mask, shifts=(-s, -s), dims=(1, 2))
        xw = window_partition(x, ws).reshape(-1, ws * ws, c)
        mw = None if mask is None else window_partition(mask, ws).reshape(-1, ws * ws, 1)
        xw, mw = self.attn(xw, mw, self.attn_mask)
        x = window_reverse(xw.reshape(-1, ws, ws, c), ws, h, w)
        if mw is not None:
            mask = window_reverse(mw.reshape(-1, ws, ws, 1), ws, h, w)
        if s > 0:
            x = torch.roll(x, shifts=(s, s), dims=(1, 2))
            if mask is not None:
                mask = torch.roll(mask, shifts=(s, s), dims=(1, 2))
        x = x.reshape(-1, h * w, c)
        if mask is not None:
            mask = mask.reshape(-1, h * w, 1)
        x = self.fuse(torch.cat([shortcut, x], dim=-1))
        x = self.mlp.fc2(self.mlp.fc1(x))
        return x, mask


class PatchResample(nn.Module):
    """Token map -> partial conv 3x3 lrelu with 2x down (PatchMerging) or up (PatchUpsampling) -> tokens.
    Keys: conv.conv.*"""

    def __init__(self, dim: int, up: int = 1, down: int = 1):
        super().__init__()
        self.conv = Conv2dLayerPartial(dim, dim, 3, activation=Activation.LRELU, up=up, down=down)
        self.factor = up / down

    def forward(
        self, x: Tensor, size: tuple[int, int], mask: Tensor | None = None
    ) -> tuple[Tensor, tuple[int, int], Tensor | None]:
        x = token2feature(x, size)
        if mask is not None:
            mask = token2feature(mask, size)
        x, mask = self.conv(x, mask)
        size = (int(size[0] * self.factor), int(size[1] * self.factor))
        return feature2token(x), size, (None if mask is None else feature2token(mask))


class BasicLayer(nn.Module):
    """Optional resample, ``depth`` Swin blocks, partial conv 3x3, residual to the resampled input.
    Keys: downsample.* (if any), blocks.<i>.*, conv.conv.*"""

    def __init__(
        self,
        dim: int,
        resolution: int,
        depth: int,
        num_heads: int,
        window_size: int,
        mlp_ratio: float,
        downsample: PatchResample | None,
    ):
        super().__init__()
        self.downsample = downsample
        self.blocks = nn.ModuleList(
            SwinBlock(
                dim, resolution, num_heads, window_size, 0 if i % 2 == 0 else window_size // 2, mlp_ratio
            )
            for i in range(depth)
        )
        self.conv = Conv2dLayerPartial(dim, dim, 3, activation=Activation.LRELU)

    def forward(
        self, x: Tensor, size: tuple[int, int], mask: Tensor | None = None
    ) -> tuple[Tensor, tuple[int, int], Tensor | None]:
        if self.downsample is not None:
            x, size, mask = self.downsample(x, size, mask)
        identity = x
        for blk in self.blocks:
            x, mask = blk(x, size, mask)
        if mask is not None:
            mask = token2feature(mask, size)
        x, mask = self.conv(token2feature(x, size), mask)
        x = feature2token(x) + identity
        return x, size, (None if mask is None else feature2token(mask))


class DecStyleBlock(nn.Module):
    """StyleConv up 2x, + skip, StyleConv, ToRGB (accumulating the image). No noise in the first stage.
    Keys: conv0.*, conv1.*, toRGB.*"""

    def __init__(self, res: int, in_channels: int, out_channels: int, style_dim: int, img_channels: int):
        super().__init__()
        self.conv0 = StyleConv(in_channels, out_channels, style_dim, res, up=2, use_noise=False)
        self.conv1 = StyleConv(out_channels, out_channels, style_dim, res, use_noise=False)
        self.toRGB = ToRGB(out_channels, img_channels, style_dim)

    def forward(self, x: Tensor, img: Tensor | None, style: Tensor, skip: Tensor) -> tuple[Tensor, Tensor]:
        x = self.conv0(x, style) + skip
        x = self.conv1(x, style)
        return x, self.toRGB(x, style, skip=img)


class FirstStage(nn.Module):
    """Coarse inpainting: partial-conv encoder to 64x64, 5 transformer layers 64-32-16-32-64, the 16x16
    bottleneck mixes tokens with a w-derived map through ``token_keep`` (N, 256, dim), then a style
    decoder back to full size; returns the coarse image composited with the known pixels."""

    MID_SIZE = 16

    def __init__(
        self,
        img_channels: int,
        img_resolution: int,
        dim: int,
        w_dim: int,
        depths: tuple[int, ...],
        num_heads: int,
        window_sizes: tuple[int, ...],
        mlp_ratio: float,
    ):
        super().__init__()
        res = 64
        act = Activation.LRELU
        self.dim = dim
        self.conv_first = Conv2dLayerPartial(img_channels + 1, dim, 3, activation=act)
        down_time = int(math.log2(img_resolution // res))
        self.enc_conv = nn.ModuleList(
            Conv2dLayerPartial(dim, dim, 3, activation=act, down=2) for _ in range(down_time)
        )
        ratios = (1, 0.5, 0.5, 2, 2)
        if len(depths) != len(ratios) or len(window_sizes) != len(ratios):
            raise ValueError(f"FirstStage: depths and window_sizes need {len(ratios)} entries")
        self.tran = nn.ModuleList()
        for depth, ratio, window in zip(depths, ratios, window_sizes, strict=True):
            res = int(res * ratio)
            if ratio < 1:
                merge = PatchResample(dim, down=int(1 / ratio))
            elif ratio > 1:
                merge = PatchResample(dim, up=int(ratio))
            else:
                merge = None
            self.tran.append(BasicLayer(dim, res, depth, num_heads, window, mlp_ratio, merge))
        down = [
            Conv2dLayer(dim, dim, 3, activation=act, down=2) for _ in range(int(math.log2(self.MID_SIZE)))
        ]
        self.down_conv = nn.Sequential(*down, nn.AdaptiveAvgPool2d((1, 1)))
        self.to_style = FullyConnectedLayer(dim, dim * 2, activation=act)
        self.ws_style = FullyConnectedLayer(w_dim, dim, activation=act)
        self.to_square = FullyConnectedLayer(dim, self.MID_SIZE**2, activation=act)
        style_dim = dim * 3
        self.dec_conv = nn.ModuleList()
        for _ in range(down_time):
            res = res * 2
            self.dec_conv.append(DecStyleBlock(res, dim, dim, style_dim, img_channels))

    def forward(self, images: Tensor, masks: Tensor, ws: Tensor, token_keep: Tensor) -> Tensor:
        x = torch.cat([masks - 0.5, images * masks], dim=1)
        skips = []
        x, mask = self.conv_first(x, masks)
        skips.append(x)
        for i, block in enumerate(self.enc_conv):
            x, mask = block(x, mask)
            if i != len(self.enc_conv) - 1:
                skips.append(x)
        size = (int(x.shape[2]), int(x.shape[3]))
        x = feature2token(x)
        mask = feature2token(mask)
        mid = len(self.tran) // 2
        style = None
        for i, block in enumerate(self.tran):
            if i < mid:
                x, size, mask = block(x, size, mask)
                skips.append(x)
            elif i > mid:
                x, size, _ = block(x, size, None)
                x = x + skips[mid - i]
            else:
                x, size, _ = block(x, size, None)
                w = self.ws_style(ws[:, -1])
                add_n = self.to_square(w).unsqueeze(
                    -1
                )  # (N, 256, 1): linear resize to 256 tokens is identity
                keep = token_keep.to(x.dtype)
                x = x * keep + add_n * (1 - keep)
                gs = self.to_style(self.down_conv(token2feature(x, size)).flatten(start_dim=1))
                style = torch.cat([gs, w], dim=1)
        x = token2feature(x, size)
        img = None
        for i, block in enumerate(self.dec_conv):
            x, img = block(x, img, style, skips[len(self.dec_conv) - i - 1])
        return img * (1 - masks) + images * masks
