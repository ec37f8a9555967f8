"""MAT (Mask-Aware Transformer, fenglinglwb/MAT) generator in plain PyTorch, with explicit randomness.

State-dict keys and shapes equal the official ``networks.mat.Generator`` (z_dim 512, w_dim 512,
512x512): ``synthesis.*`` then ``mapping.fc0..fc7``, ``mapping.w_avg``. Everything the original draws
at random inside its forward is an input here:

- ``z`` (N, z_dim): the latent;
- ``token_keep`` (N, 256, stage1_dim): the 0/1 map the original draws with
  ``F.dropout(0.5 * ones, training=True)`` on the first-stage 16x16 tokens;
- ``feature_keep`` (N, C16, 16, 16): the same on the second-stage 16x16 encoder feature.

Per-pixel noise is off (``NoiseMode.NONE``, as IOPaint runs it); no custom CUDA ops; exports to ONNX
with a dynamic batch. MAT code and weights are CC BY-NC 4.0.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import Tensor, nn

from trt_inpaint.errors import CheckpointError
from trt_inpaint.models.init import init_value
from trt_inpaint.models.mat_layers import (
    Activation,
    Conv2dLayer,
    FullyConnectedLayer,
    MappingNet,
    NoiseMode,
    StyleConv,
    ToRGB,
)
from trt_inpaint.models.mat_transformer import FirstStage

MID = 16  # the bottleneck where both keep maps live (16x16) for any resolution
PLACES_PARAMS = 61_562_518  # parameters of the official 512 Generator (counted on the original code)

# keys a checkpoint may lack: filled from the model (noise is unused with NoiseMode.NONE; the shifted
# window masks are constants computed from the configuration)
FILLABLE_SUFFIXES = (".noise_const", ".noise_strength", ".attn_mask")
# keys a checkpoint may hold that a model without noise does not have: dropped (unused with NONE)
DROPPABLE_SUFFIXES = (".noise_const", ".noise_strength")


@dataclass(frozen=True)
class MATConfig:
    """Everything that shapes the generator. Defaults: the official Places/CelebA 512 model."""

    z_dim: int = 512
    c_dim: int = 0
    w_dim: int = 512
    img_resolution: int = 512
    img_channels: int = 3
    stage1_dim: int = 180
    stage1_depths: tuple[int, ...] = (2, 3, 4, 3, 2)
    stage1_heads: int = 6
    stage1_windows: tuple[int, ...] = (8, 16, 16, 16, 8)
    mlp_ratio: float = 2.0
    channel_base: int = 32768
    channel_max: int = 512
    mapping_layers: int = 8
    use_noise: bool = True  # only adds (unused) noise_const / noise_strength keys, as the official model
    noise_mode: NoiseMode = NoiseMode.NONE

    def nf(self, res_log2: int) -> int:
        """Channels of the second stage at resolution 2**res_log2 (official: 64 at 512 ... 512 at <= 64)."""
        return min(self.channel_max, self.channel_base // 2**res_log2)


class EncFromRGB(nn.Module):
    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv0 = Conv2dLayer(in_channels, out_channels, 1, activation=Activation.LRELU)
        self.conv1 = Conv2dLayer(out_channels, out_channels, 3, activation=Activation.LRELU)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv1(self.conv0(x))


class ConvBlockDown(nn.Module):
    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv0 = Conv2dLayer(in_channels, out_channels, 3, activation=Activation.LRELU, down=2)
        self.conv1 = Conv2dLayer(out_channels, out_channels, 3, activation=Activation.LRELU)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv1(self.conv0(x))


class Encoder(nn.Module):
    """Conv encoder from full size down to 16x16. Keys: EncConv_Block_<r>x<r>.conv0/conv1.*"""

    def __init__(self, cfg: MATConfig):
        super().__init__()
        res_log2 = int(math.log2(cfg.img_resolution))
        self.res_log2s = list(range(res_log2, 3, -1))
        for i in self.res_log2s:
            r = 2**i
            if i == res_log2:
                block = EncFromRGB(cfg.img_channels * 2 + 1, cfg.nf(i))
            else:
                block = ConvBlockDown(cfg.nf(i + 1), cfg.nf(i))
            setattr(self, f"EncConv_Block_{r}x{r}", block)

    def forward(self, x: Tensor) -> dict[int, Tensor]:
        out = {}
        for i in self.res_log2s:
            x = getattr(self, f"EncConv_Block_{2**i}x{2**i}")(x)
            out[i] = x
        return out


class ToStyle(nn.Module):
    """Three stride-2 convs, global average pool, FC: the global style code of the second stage."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        act = Activation.LRELU
        convs = [Conv2dLayer(in_channels, in_channels, 3, activation=act, down=2) for _ in range(3)]
        self.conv = nn.Sequential(*convs)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = FullyConnectedLayer(in_channels, out_channels, activation=act)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.pool(self.conv(x)).flatten(start_dim=1))


def _style_conv(cfg: MATConfig, cin: int, cout: int, style_dim: int, res_log2: int, up: int = 1) -> StyleConv:
    return StyleConv(
        cin, cout, style_dim, 2**res_log2, up=up, use_noise=cfg.use_noise, noise_mode=cfg.noise_mode
    )


class DecBlockFirstV2(nn.Module):
    """16x16: conv, + encoder feature, StyleConv, ToRGB (ws[:, 0], ws[:, 1])."""

    def __init__(self, cfg: MATConfig, style_dim: int):
        super().__init__()
        c = cfg.nf(4)
        self.conv0 = Conv2dLayer(c, c, 3, activation=Activation.LRELU)
        self.conv1 = _style_conv(cfg, c, c, style_dim, 4)
        self.toRGB = ToRGB(c, cfg.img_channels, style_dim)

    def forward(self, x: Tensor, ws: Tensor, gs: Tensor, feats: dict[int, Tensor]) -> tuple[Tensor, Tensor]:
        x = self.conv0(x) + feats[4]
        x = self.conv1(x, torch.cat([ws[:, 0], gs], dim=1))
        return x, self.toRGB(x, torch.cat([ws[:, 1], gs], dim=1))


class DecBlock(nn.Module):
    """2**res: StyleConv up 2x, + encoder feature, StyleConv, ToRGB (ws indices 2res-9 .. 2res-7)."""

    def __init__(self, cfg: MATConfig, res: int, style_dim: int):
        super().__init__()
        self.res = res
        self.conv0 = _style_conv(cfg, cfg.nf(res - 1), cfg.nf(res), style_dim, res, up=2)
        self.conv1 = _style_conv(cfg, cfg.nf(res), cfg.nf(res), style_dim, res)
        self.toRGB = ToRGB(cfg.nf(res), cfg.img_channels, style_dim)

    def forward(
        self, x: Tensor, img: Tensor, ws: Tensor, gs: Tensor, feats: dict[int, Tensor]
    ) -> tuple[Tensor, Tensor]:
        r = self.res
        x = self.conv0(x, torch.cat([ws[:, r * 2 - 9], gs], dim=1)) + feats[r]
        x = self.conv1(x, torch.cat([ws[:, r * 2 - 8], gs], dim=1))
        return x, self.toRGB(x, torch.cat([ws[:, r * 2 - 7], gs], dim=1), skip=img)


class Decoder(nn.Module):
    def __init__(self, cfg: MATConfig, style_dim: int):
        super().__init__()
        self.res_log2 = int(math.log2(cfg.img_resolution))
        self.Dec_16x16 = DecBlockFirstV2(cfg, style_dim)
        for res in range(5, self.res_log2 + 1):
            setattr(self, f"Dec_{2**res}x{2**res}", DecBlock(cfg, res, style_dim))

    def forward(self, x: Tensor, ws: Tensor, gs: Tensor, feats: dict[int, Tensor]) -> Tensor:
        x, img = self.Dec_16x16(x, ws, gs, feats)
        for res in range(5, self.res_log2 + 1):
            x, img = getattr(self, f"Dec_{2**res}x{2**res}")(x, img, ws, gs, feats)
        return img


class SynthesisNet(nn.Module):
    """First stage (transformer) then second stage (conv encoder, 16x16 keep-map mix, style decoder)."""

    def __init__(self, cfg: MATConfig):
        super().__init__()
        res_log2 = int(math.log2(cfg.img_resolution))
        self.num_layers = res_log2 * 2 - 6
        self.first_stage = FirstStage(
            cfg.img_channels,
            cfg.img_resolution,
            cfg.stage1_dim,
            cfg.w_dim,
            cfg.stage1_depths,
            cfg.stage1_heads,
            cfg.stage1_windows,
            cfg.mlp_ratio,
        )
        self.enc = Encoder(cfg)
        self.to_square = FullyConnectedLayer(cfg.w_dim, MID * MID, activation=Activation.LRELU)
        self.to_style = ToStyle(cfg.nf(4), cfg.nf(2) * 2)
        self.dec = Decoder(cfg, cfg.w_dim + cfg.nf(2) * 2)

    def forward(
        self, images: Tensor, masks: Tensor, ws: Tensor, token_keep: Tensor, feature_keep: Tensor
    ) -> Tensor:
        out_stg1 = self.first_stage(images, masks, ws, token_keep)
        x = images * masks + out_stg1 * (1 - masks)
        x = torch.cat([masks - 0.5, x, images * masks], dim=1)
        feats = self.enc(x)
        fea_16 = feats[4]
        keep = feature_keep.to(fea_16.dtype)
        add_n = self.to_square(ws[:, 0]).reshape(-1, 1, MID, MID)  # bilinear resize 16 -> 16 is identity
        fea_16 = fea_16 * keep + add_n * (1 - keep)
        feats[4] = fea_16
        gs = self.to_style(fea_16)
        img = self.dec(fea_16, ws, gs, feats)
        return img * (1 - masks) + images * masks


class MATGenerator(nn.Module):
    """MAT generator with explicit randomness.

    forward(images, masks, z, token_keep, feature_keep, truncation_psi=1.0) -> (N, 3, R, R):
      images (N, 3, R, R) in [-1, 1]; masks (N, 1, R, R), 1 = KNOWN, 0 = hole (MAT's convention);
      z (N, z_dim); token_keep (N, 256, stage1_dim) and feature_keep (N, nf(4), 16, 16), each 0/1
      (1 = keep the feature, 0 = replace it by the w-derived map). See ``noise_shapes()``.
      Output in [-1, 1] (not clamped), known pixels copied from ``images``.
    """

    def __init__(
        self,
        z_dim: int = 512,
        c_dim: int = 0,
        w_dim: int = 512,
        img_resolution: int = 512,
        img_channels: int = 3,
        stage1_dim: int = 180,
        stage1_depths: tuple[int, ...] = (2, 3, 4, 3, 2),
        stage1_heads: int = 6,
        stage1_windows: tuple[int, ...] = (8, 16, 16, 16, 8),
        mlp_ratio: float = 2.0,
        channel_base: int = 32768,
        channel_max: int = 512,
        mapping_layers: int = 8,
        use_noise: bool = True,
        noise_mode: NoiseMode = NoiseMode.NONE,
    ):
        super().__init__()
        if c_dim != 0:
            raise ValueError("MATGenerator: only c_dim=0 (unconditional) is supported")
        if img_resolution < 128 or 2 ** int(math.log2(img_resolution)) != img_resolution:
            raise ValueError(
                f"MATGenerator: img_resolution must be a power of two >= 128, got {img_resolution}"
            )
        self.config = MATConfig(
            z_dim, c_dim, w_dim, img_resolution, img_channels, stage1_dim, tuple(stage1_depths), stage1_heads,
            tuple(stage1_windows), mlp_ratio, channel_base, channel_max, mapping_layers, use_noise,
            NoiseMode(noise_mode),
        )  # fmt: skip
        self.z_dim, self.c_dim, self.w_dim = z_dim, c_dim, w_dim
        self.img_resolution, self.img_channels = img_resolution, img_channels
        self.synthesis = SynthesisNet(self.config)
        self.mapping = MappingNet(z_dim, w_dim, self.synthesis.num_layers, num_layers=mapping_layers)

    def noise_shapes(self) -> dict[str, tuple[int, ...]]:
        """Shapes (without batch) of the explicit random inputs: z, token_keep, feature_keep."""
        cfg = self.config
        return {
            "z": (cfg.z_dim,),
            "token_keep": (MID * MID, cfg.stage1_dim),
            "feature_keep": (cfg.nf(4), MID, MID),
        }

    def forward(
        self,
        images: Tensor,
        masks: Tensor,
        z: Tensor,
        token_keep: Tensor,
        feature_keep: Tensor,
        truncation_psi: float = 1.0,
    ) -> Tensor:
        ws = self.mapping(z, truncation_psi=truncation_psi)
        return self.synthesis(images, masks, ws, token_keep, feature_keep)


def checkpoint_filter_fn(state_dict: Mapping[str, Tensor], model: MATGenerator) -> dict[str, Tensor]:
    """Match a generator state dict (official G / G_ema tensors, or IOPaint's Places_512_FullData_G.pth)
    to ``model``: fills missing ``noise_const`` / ``noise_strength`` / ``attn_mask`` from the model's own
    values, drops ``noise_const`` / ``noise_strength`` the model lacks (unused without noise); any other
    missing or unexpected key, or a shape mismatch, raises CheckpointError."""
    own = model.state_dict()
    out: dict[str, Tensor] = {}
    unexpected = []
    for k, v in state_dict.items():
        if k in own:
            if tuple(v.shape) != tuple(own[k].shape):
                want = tuple(own[k].shape)
                raise CheckpointError(f"MAT checkpoint: {k} has shape {tuple(v.shape)}, expected {want}")
            out[k] = v
        elif not k.endswith(DROPPABLE_SUFFIXES):
            unexpected.append(k)
    if unexpected:
        raise CheckpointError(f"MAT checkpoint: {len(unexpected)} unexpected keys, e.g. {unexpected[0]}")
    missing = [k for k in own if k not in out]
    hard = [k for k in missing if not k.endswith(FILLABLE_SUFFIXES)]
    if hard:
        raise CheckpointError(f"MAT checkpoint: {len(hard)} missing keys, e.g. {hard[0]}")
    for k in missing:
        out[k] = own[k].detach().clone()
    return {k: out[k] for k in own}


# the ToRGB gain of the parity fixtures (tests/fixtures/mat_parity.*: the original code ran with them)
PARITY_RGB_GAIN = 0.05


@torch.no_grad()
def random_init_(model: MATGenerator, seed: int = 0, rgb_gain: float | None = None) -> MATGenerator:
    """Seeded random weights that give a meaningful output (``--random-init`` exports, parity fixtures).

    The per-key rule of ``trt_inpaint.models.init``, rescaled to the standard-normal raw weights that the
    equalised-learning-rate layers expect (they divide by sqrt(fan_in) at run time); mapping weights / 0.01
    (their lr multiplier), ToRGB weights x ``rgb_gain``, noise strength 0. Constant buffers (resampling
    filters, shifted-window attention masks) keep their constructed values.

    ``rgb_gain`` by default: 0.1 at full width and 0.35 for reduced widths (channel_max < 512). The output's
    spread over the hole (mean per-channel std, 512x512, the shipped photos) is then 0.06-0.08 at full width
    (up to 26 % of hole values clamped at 0 or 1) and 0.075-0.19 for ``mat_tiny``; at the parity fixtures'
    0.05 it is 0.026-0.041 and 0.01-0.015: nearly flat within each channel.
    """
    if rgb_gain is None:
        config = getattr(model, "config", None)  # parts of a generator (tests) have none, and no ToRGB
        rgb_gain = 0.35 if config is not None and config.channel_max < 512 else 0.1
    for k, t in model.state_dict().items():
        if not t.is_floating_point() or k.endswith(("resample_filter", "attn_mask")):
            continue
        v = np.asarray(init_value(k, tuple(t.shape), seed, 1.0), dtype=np.float64)
        if v.ndim >= 2:
            v = v * np.sqrt(np.prod(v.shape[1:]))
        if k.endswith("toRGB.conv.weight"):
            v = v * rgb_gain
        if k.startswith("mapping.fc") and k.endswith(".weight"):
            v = v / 0.01
        if k.endswith("noise_strength"):
            v = v * 0
        t.copy_(torch.from_numpy(np.asarray(v, dtype=np.float32)))
    return model


def mat_places(**kw) -> MATGenerator:
    """The official Places_512 / CelebA-HQ_512 generator (61.6M parameters)."""
    return MATGenerator(**kw)


TINY = {
    "z_dim": 64,
    "w_dim": 64,
    "stage1_dim": 24,
    "stage1_depths": (2, 2, 2, 2, 2),
    "stage1_heads": 2,
    "channel_base": 2048,
    "channel_max": 32,
    "mapping_layers": 2,
}


def mat_tiny(**kw) -> MATGenerator:
    """Reduced channels and depths (512 input kept) for fast tests; same code paths as the full model."""
    return MATGenerator(**{**TINY, **kw})


def config_dict(model: MATGenerator) -> dict:
    """The model's configuration as plain JSON-able values."""
    return {k: (v.value if isinstance(v, NoiseMode) else v) for k, v in asdict(model.config).items()}
