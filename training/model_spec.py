"""Which model a preset trains, as plain data (naming a model needs no torch)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelSpec:
    """Which model a preset trains: ``kind`` in {"wrn", "mlp", "cnn"} and its sizes."""

    kind: str
    depth: int = 16
    widen: int = 8
    dropout: float = 0.3
    hidden: tuple[int, ...] = (128,)
    channels: int = 8

    @property
    def label(self) -> str:
        """How reports name the model, e.g. ``WideResNet-16-8`` or ``MLP(128)``."""
        if self.kind == "wrn":
            return f"WideResNet-{self.depth}-{self.widen}"
        if self.kind == "mlp":
            return f"MLP({', '.join(map(str, self.hidden))})"
        return self.kind.upper()

    @property
    def batchable(self) -> bool:
        """True when members can be trained together with vmap (no batch norm, no dropout)."""
        return self.kind in ("mlp", "cnn")
