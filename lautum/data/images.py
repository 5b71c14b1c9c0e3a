"""The container every reader returns: a batch of labelled images as tensors."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import torch

__all__ = ["LabeledImages", "to_unit_float"]


def to_unit_float(x: torch.Tensor) -> torch.Tensor:
    """Images as float32 in [0, 1]: uint8 is divided by 255, floats are copied.

    A new tensor is always returned, so callers may modify it in place.

    Examples
    --------
    >>> to_unit_float(torch.tensor([0, 51, 255], dtype=torch.uint8))
    tensor([0.0000, 0.2000, 1.0000])
    """
    if x.dtype == torch.uint8:
        return x.to(torch.float32).div_(255.0)
    return x.to(torch.float32, copy=True).clamp_(0.0, 1.0)


@dataclass
class LabeledImages:
    """Images with integer labels.

    Attributes
    ----------
    x : torch.Tensor, shape (N, C, H, W)
        float32 pixels in [0, 1].
    y : torch.Tensor, shape (N,)
        int64 labels in ``range(len(classes))``.
    classes : list of str
        Class names; ``classes[y[i]]`` names sample ``i``.
    name : str
        Where the samples come from, e.g. ``"mnist/train"``.
    index : torch.Tensor or None, shape (N,)
        Position of each sample in its source split (as loaded), where the
        samples are a selection of it; ``None`` for a whole split.
    info : dict
        Provenance (layout read, de-duplication counts, ...).

    Examples
    --------
    >>> d = LabeledImages(torch.zeros(4, 1, 2, 2), torch.tensor([0, 1, 1, 0]), ["a", "b"], "toy")
    >>> len(d), d.shape, d.class_counts().tolist()
    (4, (1, 2, 2), [2, 2])
    """

    x: torch.Tensor
    y: torch.Tensor
    classes: list[str]
    name: str
    index: torch.Tensor | None = None
    info: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.x.ndim != 4 or self.y.ndim != 1 or len(self.x) != len(self.y):
            raise ValueError(
                f"LabeledImages {self.name!r}: x must be (N, C, H, W) and y (N,), got {tuple(self.x.shape)} "
                f"and {tuple(self.y.shape)}"
            )

    def __len__(self) -> int:
        return len(self.y)

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of one image."""
        return tuple(self.x.shape[1:])

    @property
    def device(self) -> torch.device:
        return self.x.device

    def class_counts(self) -> torch.Tensor:
        """Samples per class, shape ``(len(classes),)``."""
        return torch.bincount(self.y.cpu(), minlength=len(self.classes))

    def to(self, device: str | torch.device) -> LabeledImages:
        """A copy on ``device`` (tensors only; ``index`` stays on the CPU)."""
        return replace(self, x=self.x.to(device), y=self.y.to(device))

    def tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x, y)``, e.g. for ``torch.utils.data.TensorDataset(*d.tensors())``."""
        return self.x, self.y
