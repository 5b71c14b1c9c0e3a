"""Networks with an explicit ``features`` / ``head`` split.

Regularizers need the shared weights, the features and the classifier head
separately (L2-SP penalises ``features`` toward their start and the head toward
zero; the Lautum regularizer reads the first layer; MK-MMD compares features), so
every network here is a :class:`TransferNet`: ``logits = head(features(x))``.
Block surgery for fine-tuning lives here too: :func:`freeze_first_blocks`
freezes the first blocks of a network (gradients and BatchNorm statistics).
"""

from __future__ import annotations

import types

import torch
from torch import nn

__all__ = ["TransferNet", "SmallCNN", "small_cnn", "resnet", "new_head", "freeze_first_blocks"]


class TransferNet(nn.Module):
    """A feature extractor followed by a linear head.

    Parameters
    ----------
    features : nn.Module
        Maps images ``(N, C, H, W)`` to feature vectors ``(N, feature_dim)``.
    feature_dim : int
        Width of the feature vectors.
    num_classes : int
        Number of outputs of the head.
    """

    def __init__(self, features: nn.Module, feature_dim: int, num_classes: int):
        super().__init__()
        self.features = features
        self.feature_dim = feature_dim
        self.head = nn.Linear(feature_dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))

    def forward_with_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(logits, features)`` from one pass (for feature-level regularizers)."""
        z = self.features(x)
        return self.head(z), z

    def first_layer(self) -> nn.Module:
        """The first weight-carrying layer (the layer the channel-form Lautum term reads)."""
        for m in self.features.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                return m
        raise LookupError("this network's features hold no Conv2d or Linear layer")


def new_head(model: TransferNet, num_classes: int, *, generator: torch.Generator | None = None) -> TransferNet:
    """Replace ``model.head`` with a freshly initialised head for ``num_classes``.

    Used when the target's label set differs from the source's (MNIST digits →
    notMNIST letters). The new head is created on the model's device and dtype.
    """
    old = model.head
    head = nn.Linear(old.in_features, num_classes, device=old.weight.device, dtype=old.weight.dtype)
    if generator is not None:
        bound = 1.0 / old.in_features**0.5
        with torch.no_grad():
            head.weight.uniform_(-bound, bound, generator=generator)
            head.bias.uniform_(-bound, bound, generator=generator)
    model.head = head
    return model


class SmallCNN(nn.Sequential):
    """Two conv blocks and a dense layer for 28×28 or 32×32 images.

    ``conv(5×5, width) → ReLU → maxpool 2 → conv(5×5, 2·width) → ReLU → maxpool 2 →
    flatten → linear(feature_dim) → ReLU``. The spatial size after the convolutions
    depends on the input size, so the dense layer is sized from ``image_size``.
    """

    def __init__(self, in_channels: int = 1, image_size: int = 28, width: int = 32, feature_dim: int = 128):
        if image_size not in (28, 32):
            raise ValueError(
                f"SmallCNN is built for 28×28 or 32×32 inputs, got image_size={image_size}; "
                "resize the data (make_transfer_split(..., image_size=28 or 32)) or use resnet()."
            )
        side = ((image_size - 4) // 2 - 4) // 2  # two valid 5×5 convs, two 2×2 pools
        super().__init__(
            nn.Conv2d(in_channels, width, 5, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 5),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(2 * width * side * side, feature_dim),
            nn.ReLU(),
        )


def small_cnn(num_classes: int = 10, *, in_channels: int = 1, image_size: int = 28,
              width: int = 32, feature_dim: int = 128) -> TransferNet:
    """The small CNN every quick-profile experiment uses.

    >>> net = small_cnn(10, in_channels=3, image_size=32)
    >>> net(torch.zeros(2, 3, 32, 32)).shape
    torch.Size([2, 10])
    >>> type(net.first_layer()).__name__
    'Conv2d'
    """
    features = SmallCNN(in_channels, image_size, width, feature_dim)
    return TransferNet(features, feature_dim, num_classes)


_RESNETS = {"resnet18", "resnet34", "resnet50", "resnet101", "resnet152"}


def resnet(name: str = "resnet50", num_classes: int = 10, *, pretrained: bool = False) -> TransferNet:
    """A torchvision ResNet split into ``features`` (up to global pooling) and ``head``.

    Parameters
    ----------
    name : str
        One of ``resnet18``, ``resnet34``, ``resnet50``, ``resnet101``, ``resnet152``.
    num_classes : int
        Outputs of the new head.
    pretrained : bool
        Load torchvision's ImageNet weights. Only on explicit request: this needs
        them in torch's hub cache or a network connection, and fails with an
        explanation otherwise.
    """
    import torchvision

    if name not in _RESNETS:
        raise ValueError(f"unknown ResNet {name!r}; expected one of {sorted(_RESNETS)}")
    weights = None
    if pretrained:
        weights = torchvision.models.get_model_weights(name).DEFAULT
    try:
        net = torchvision.models.get_model(name, weights=weights)
    except (OSError, RuntimeError) as err:  # URLError is an OSError
        raise RuntimeError(
            f"could not load ImageNet weights for {name} ({err}). They are downloaded from "
            f"{weights.url} into {torch.hub.get_dir()}/checkpoints; on a machine without "
            "internet, copy that file there by hand, or pass pretrained=False."
        ) from err
    feature_dim = net.fc.in_features
    net.fc = nn.Identity()
    return TransferNet(net, feature_dim, num_classes)


# -- block surgery -----------------------------------------------------------------------------------------------
def _blocks(model: TransferNet) -> list[list[nn.Module]]:
    """The network's blocks in input order (the unit of freezing).

    Small CNN: each conv → (BN) → ReLU → pool group. ResNet (the L2-SP official
    code's ``--fix_blocks`` count): ``conv1``+``bn1``, then every residual unit.
    """
    feats = model.features
    if hasattr(feats, "layer1"):  # torchvision ResNet
        blocks = [[feats.conv1, feats.bn1]]
        for name in ("layer1", "layer2", "layer3", "layer4"):
            blocks += [[unit] for unit in getattr(feats, name)]
        return blocks
    blocks, cur = [], []
    for m in feats.children():
        cur.append(m)
        if isinstance(m, nn.MaxPool2d):
            blocks.append(cur)
            cur = []
    if cur:
        blocks.append(cur)
    return blocks


def _eval_forever(module: nn.Module) -> None:
    """Keep a module in eval mode whatever ``model.train()`` says (frozen BN statistics)."""
    def train(self, mode: bool = True):
        return nn.Module.train(self, False)

    module.train = types.MethodType(train, module)
    module.eval()


def freeze_first_blocks(model: TransferNet, n: int) -> list[str]:
    """Freeze the first ``n`` blocks: no gradient, BatchNorm statistics kept from the source.

    Returns the names of the frozen parameters.

    >>> net = small_cnn(10, width=4, feature_dim=8)
    >>> freeze_first_blocks(net, 1)
    ['features.0.weight', 'features.1.weight', 'features.1.bias']
    >>> net.train().features[1].training
    False
    """
    blocks = _blocks(model)
    if not 0 <= n <= len(blocks):
        raise ValueError(f"freeze_blocks={n}, but this network has {len(blocks)} blocks")
    frozen_ids = set()
    for block in blocks[:n]:
        for m in block:
            for p in m.parameters():
                p.requires_grad_(False)
                frozen_ids.add(id(p))
            for sub in m.modules():
                if isinstance(sub, nn.modules.batchnorm._BatchNorm):
                    _eval_forever(sub)
    return [name for name, p in model.named_parameters() if id(p) in frozen_ids]
