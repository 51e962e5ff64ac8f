"""Real MNIST from IDX files at a path, split into documented partitions.

Only the official MNIST *test* split (t10k, 10,000 images) is available on these machines, so the
project trains on one partition of it and evaluates on another (by default images 0–7999 to train
and 8000–9999 to evaluate); every accuracy is reported with the partition it was measured on.
Images are scaled to [0, 1] (x / 255) and flattened to 784 values, as the shared MNIST nets expect.
"""
from __future__ import annotations

import gzip
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from optcert.errors import InvalidOptionError, UnreadableFileError

IMAGES = "t10k-images-idx3-ubyte.gz"
LABELS = "t10k-labels-idx1-ubyte.gz"
_MAGIC = {2049: 1, 2051: 3}   # IDX magic numbers of unsigned-byte label (1-D) and image (3-D) files


@dataclass(frozen=True)
class Partition:
    """Images `start` .. `stop` − 1 of the MNIST test split (a half-open index range)."""

    start: int
    stop: int

    def __post_init__(self):
        if not 0 <= self.start < self.stop:
            raise InvalidOptionError(f"partition {self.start}-{self.stop - 1} is empty or negative")

    @classmethod
    def parse(cls, text: str) -> "Partition":
        """"0-7999" (inclusive, as printed) → Partition(0, 8000); InvalidOptionError when malformed."""
        lo, sep, hi = str(text).strip().partition("-")
        try:
            return cls(int(lo), int(hi) + 1) if sep else cls(int(lo), int(lo) + 1)
        except ValueError:
            raise InvalidOptionError(f"partition {text!r} is not a range like 0-7999") from None

    @property
    def size(self) -> int:
        return self.stop - self.start

    def __str__(self) -> str:
        return f"{self.start}-{self.stop - 1}"

    def describe(self) -> str:
        return f"MNIST test split (t10k) images {self.start}–{self.stop - 1} ({self.size} images)"

    def overlaps(self, other: "Partition") -> bool:
        return self.start < other.stop and other.start < self.stop


TRAIN = Partition(0, 8000)
EVALUATE = Partition(8000, 10000)


def default_root() -> Path:
    """$OPTCERT_DATASETS/mnist, else ../shared/datasets/mnist beside the repository."""
    env = os.environ.get("OPTCERT_DATASETS")
    base = Path(env) if env else Path(__file__).resolve().parents[2].parent / "shared" / "datasets"
    return base / "mnist"


def read_idx(path: str | Path) -> np.ndarray:
    """The uint8 array of a (gzipped or plain) IDX file; UnreadableFileError naming the file."""
    path = Path(path)
    try:
        raw = gzip.open(path).read() if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError) as err:
        raise UnreadableFileError(f"{path}: cannot read IDX file ({err})") from None
    magic = int.from_bytes(raw[:4], "big") if len(raw) >= 4 else -1
    dims = _MAGIC.get(magic)
    if dims is None:
        raise UnreadableFileError(f"{path}: not an unsigned-byte IDX file (magic {magic})")
    header = 4 + 4 * dims
    shape = tuple(int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(dims))
    if len(raw) != header + int(np.prod(shape)):
        raise UnreadableFileError(f"{path}: {len(raw) - header} data bytes for shape {shape}")
    return np.frombuffer(raw, np.uint8, offset=header).reshape(shape)


def load_mnist(root: str | Path | None = None, partition: Partition = TRAIN,
               dtype: type = np.float32) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 784) in [0, 1] (pixel / 255 computed in `dtype`) and labels (N,) int64 of
    `partition`, read from `root` (a folder with the t10k IDX files; default `default_root()`)."""
    root = Path(root) if root is not None else default_root()
    if not root.is_dir():
        raise UnreadableFileError(f"{root}: no MNIST folder here (expected {IMAGES} and {LABELS})")
    images, labels = read_idx(root / IMAGES), read_idx(root / LABELS)
    if images.ndim != 3 or labels.ndim != 1 or images.shape[0] != labels.shape[0]:
        raise UnreadableFileError(f"{root}: images {images.shape} and labels {labels.shape} do not match")
    if partition.stop > labels.shape[0]:
        raise InvalidOptionError(f"partition {partition} is beyond the {labels.shape[0]} images in {root}")
    sl = slice(partition.start, partition.stop)
    x = images[sl].reshape(partition.size, -1).astype(dtype) / dtype(255.0)
    return x, labels[sl].astype(np.int64)


def write_images(path: str | Path, x: np.ndarray, y: np.ndarray, partition: Partition) -> Path:
    """An .npz (X: (N, 784) float64, y, first_index) that `optcert gap --images` reads (pass float64
    images from `load_mnist(..., dtype=np.float64)` so that X is exactly pixel / 255)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, X=np.asarray(x, dtype=np.float64), y=np.asarray(y, dtype=np.int64),
                        first_index=np.int64(partition.start))
    return path
