"""PyTorch model definitions."""

from export.models.mini_xception import MiniXception

__all__ = ["MiniXception"]
