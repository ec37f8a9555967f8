"""VGG16 feature extractor (torchvision's ``features`` layout) loaded from a weights file the user gives.

No wheel ships VGG16 weights: the perceptual and style losses and LPIPS read torchvision's
``vgg16-397923af.pth`` (or any file with the same ``features.<i>.weight/bias`` keys, e.g. a safetensors
copy) from a path. Files are read without executing anything (``models.checkpoints.read_state_dict``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor, nn

from trt_inpaint.errors import CheckpointError

# torchvision's VGG16 configuration "D": channel counts, "M" = 2x2 max pool.
_CFG = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")
# index (in ``features``) of the ReLU after each named conv
RELU = {"relu1_2": 3, "relu2_2": 8, "relu3_3": 15, "relu4_3": 22, "relu5_3": 29}
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def vgg16_features_layers(upto: int = 30) -> nn.Sequential:
    """torchvision's ``vgg16().features[:upto]`` layer for layer (same indices, same state-dict keys)."""
    layers: list[nn.Module] = []
    cin = 3
    for c in _CFG:
        if c == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(cin, int(c), 3, padding=1), nn.ReLU(inplace=False)]
            cin = int(c)
    return nn.Sequential(*layers[:upto])


class VGG16Features(nn.Module):
    """forward(x in [0, 1], NCHW RGB) -> features at ``layers`` (ImageNet-normalised input); frozen."""

    def __init__(self, layers: Sequence[str] = ("relu1_2", "relu2_2", "relu3_3", "relu4_3"), normalize=True):
        super().__init__()
        unknown = [n for n in layers if n not in RELU]
        if unknown:
            raise ValueError(f"unknown VGG16 layers {unknown}; known: {', '.join(RELU)}")
        self.layer_names = tuple(layers)
        self._taps = {RELU[n]: n for n in layers}
        self.features = vgg16_features_layers(max(RELU[n] for n in layers) + 1)
        self.normalize = normalize
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> VGG16Features:  # always eval: frozen backbone
        return super().train(False)

    def forward(self, x: Tensor) -> list[Tensor]:
        if self.normalize:
            x = (x - self.mean) / self.std
        out = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in self._taps:
                out.append(x)
        return out


def read_weights(path: str | Path) -> dict[str, Tensor]:
    """A state dict from ``path`` without executing anything (our safe reader, else weights_only)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError("weights file not found", path)
    try:
        from trt_inpaint.models.checkpoints import read_state_dict
    except ImportError:  # pragma: no cover - the models package always ships it
        try:
            obj = torch.load(str(path), map_location="cpu", weights_only=True)
        except Exception as e:
            raise CheckpointError(f"cannot read weights: {type(e).__name__}", path) from e
        return dict(obj.get("state_dict", obj))
    return read_state_dict(path)


def load_vgg16_features(
    path: str | Path,
    layers: Sequence[str] = ("relu1_2", "relu2_2", "relu3_3", "relu4_3"),
    normalize: bool = True,
) -> VGG16Features:
    """VGG16Features with torchvision weights from ``path`` (keys ``features.<i>.*``; classifier ignored)."""
    sd = read_weights(path)
    feats = {k[len("features.") :]: v for k, v in sd.items() if k.startswith("features.")}
    if not feats:  # a features-only file
        feats = {k: v for k, v in sd.items() if k.split(".")[0].isdigit()}
    model = VGG16Features(layers, normalize)
    want = model.features.state_dict()
    missing = [k for k in want if k not in feats]
    bad = [k for k in want if k in feats and tuple(feats[k].shape) != tuple(want[k].shape)]
    if missing or bad:
        what = f"missing {missing[:3]}" if missing else f"shape mismatch at {bad[:3]}"
        raise CheckpointError(f"not torchvision VGG16 weights ({what})", path)
    model.features.load_state_dict({k: feats[k].float() for k in want})
    return model
