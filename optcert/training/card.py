"""Model cards: what a trained net is, how it was trained and how well it does, as JSON beside its
ONNX file. Accuracies name the data partition they were measured on."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping

from optcert.errors import UnreadableFileError


@dataclass(frozen=True)
class ModelCard:
    """`pgd` = {norm, eps, steps, restarts, accuracy}; `schedule`, `settings`: the regime's knobs;
    times in seconds (wall and CPU)."""

    name: str
    regime: str
    architecture: tuple[int, ...]
    norm: str
    eps: float
    epochs: int
    seed: int
    data: Mapping[str, Any]
    clean_accuracy: float
    pgd: Mapping[str, Any]
    training_seconds: float
    training_cpu_seconds: float
    schedule: Mapping[str, Any] = field(default_factory=dict)
    settings: Mapping[str, Any] = field(default_factory=dict)
    onnx: str = ""
    onnx_sha256: str = ""
    versions: Mapping[str, str] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, ensure_ascii=False)

    def write(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.to_json() + "\n")
        return path

    @classmethod
    def read(cls, path: str | Path) -> "ModelCard":
        """The card in `path`; UnreadableFileError when missing or not a model card."""
        try:
            raw = json.loads(Path(path).read_text())
            raw["architecture"] = tuple(raw["architecture"])
            return cls(**raw)
        except (OSError, ValueError, TypeError, KeyError) as err:
            raise UnreadableFileError(f"{path}: not a readable model card ({err})") from None
