"""Datasets as in-memory uint8 image arrays, their normalisation and the training augmentation.

Names (as used in cache paths): ``digits`` (scikit-learn's bundled 8×8 digits, a fixed seeded
train/test split, for tests), ``fashion-mnist``, ``cifar10``, ``cifar100``.

Where the files come from:

- ``fashion-mnist``: the IDX files (``{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]``) in
  ``<root>/FashionMNIST/raw`` (torchvision's layout), else in the Debian package
  ``dataset-fashion-mnist`` (``/usr/share/datasets/fashion-mnist``), else, with ``download=True``,
  torchvision downloads them into ``<root>``.
- ``cifar10`` / ``cifar100``: the python pickles of the official archives in
  ``<root>/cifar-10-batches-py`` / ``<root>/cifar-100-python`` (torchvision's layout); with
  ``download=True`` torchvision fetches them.

Missing data raises :class:`DataMissingError` with the commands that provide it.

Each dataset is one :class:`Dataset` record in :data:`REGISTRY` (its cache name, loader, the name
the paper prints in its tables, training-set size, classes); :func:`get_dataset` finds one by any
of its names. The sizes and the paper's names are published facts (the official splits; the
paper's Tables 1-2); the cache names and ``digits`` are ours.
"""

from __future__ import annotations

import gzip
import os
import pickle
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DEFAULT_ROOT = Path("data/raw")
FASHION_MNIST_SYSTEM_DIRS: tuple[Path, ...] = (Path("/usr/share/datasets/fashion-mnist"),)
DIGITS_TEST_FRACTION = 0.25
DIGITS_SPLIT_SEED = 20240611

_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
               0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


class DataMissingError(FileNotFoundError):
    """A dataset's files are not where they are looked for; the message says how to get them."""


@dataclass(frozen=True, eq=False)
class ImageData:
    """One dataset in memory.

    ``train_images`` (N_train, C, H, W) uint8, ``train_labels`` (N_train,) int64, likewise for the
    test split (the official test set). ``mean`` / ``std`` are per-channel statistics of the
    training images scaled to [0, 1], used to normalise every split.
    """

    name: str
    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    num_classes: int
    mean: tuple[float, ...]
    std: tuple[float, ...]

    @property
    def in_channels(self) -> int:
        return int(self.train_images.shape[1])

    @property
    def image_size(self) -> tuple[int, int]:
        return int(self.train_images.shape[2]), int(self.train_images.shape[3])


def channel_stats(images: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and standard deviation of (N, C, H, W) uint8 images scaled to [0, 1]."""
    x = images.astype(np.float64) / 255.0
    mean = x.mean(axis=(0, 2, 3))
    std = x.std(axis=(0, 2, 3))
    std = np.where(std > 0, std, 1.0)
    return tuple(float(m) for m in mean), tuple(float(s) for s in std)


def _make(name, xtr, ytr, xte, yte, num_classes) -> ImageData:
    mean, std = channel_stats(xtr)
    return ImageData(name, np.ascontiguousarray(xtr), ytr.astype(np.int64), np.ascontiguousarray(xte),
                     yte.astype(np.int64), int(num_classes), mean, std)


# ----------------------------------------------------------------------------------------- IDX
def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (``.gz`` or plain), as used by MNIST and Fashion-MNIST.

    Raises
    ------
    ValueError
        If the magic number, dtype code or payload size is wrong; the message names the file.
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (gzip.BadGzipFile, EOFError, zlib.error) as e:  # truncated or not gzip at all
        raise ValueError(f"{path}: unreadable gzip ({type(e).__name__}: {e})") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise ValueError(f"{path}: not an IDX file (bad magic number)")
    code, ndim = data[2], data[3]
    if code not in _IDX_DTYPES:
        raise ValueError(f"{path}: unknown IDX dtype code 0x{code:02x}")
    if len(data) < 4 + 4 * ndim:
        raise ValueError(f"{path}: truncated IDX header")
    shape = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    dtype = np.dtype(_IDX_DTYPES[code])
    count = int(np.prod(shape)) if ndim else 1
    payload = data[4 + 4 * ndim :]
    if len(payload) != count * dtype.itemsize:
        raise ValueError(f"{path}: IDX payload has {len(payload)} bytes, shape {shape} needs {count * dtype.itemsize}")
    return np.frombuffer(payload, dtype=dtype).reshape(shape).astype(dtype.newbyteorder("="))


def write_idx(path: str | os.PathLike, array: np.ndarray) -> None:
    """Write a uint8 array as an IDX file (gzip when the name ends in ``.gz``); used by tests."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wb") as f:
        f.write(header + array.tobytes())


def _find_idx(dirs, stem: str) -> Path | None:
    for d in dirs:
        for suffix in (".gz", ""):
            p = Path(d) / f"{stem}{suffix}"
            if p.is_file():
                return p
    return None


def _fashion_mnist_missing(root: Path) -> DataMissingError:
    return DataMissingError(
        "Fashion-MNIST not found. Get it in one of these ways:\n"
        "  - offline: `sudo apt-get install dataset-fashion-mnist` (files in /usr/share/datasets/fashion-mnist);\n"
        f"  - online: `dynloss train` (downloads unless --no-download) or "
        f"torchvision.datasets.FashionMNIST('{root}', download=True) fills {root}/FashionMNIST/raw;\n"
        f"  - by hand: put train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz and "
        f"t10k-labels-idx1-ubyte.gz into {root}/FashionMNIST/raw."
    )


def load_fashion_mnist(root: str | os.PathLike = DEFAULT_ROOT, *, download: bool = False,
                       system_dirs=FASHION_MNIST_SYSTEM_DIRS) -> ImageData:
    """Fashion-MNIST (60,000 train / 10,000 test, 1×28×28, 10 classes) from IDX files."""
    root = Path(root)
    dirs = [root / "FashionMNIST" / "raw", *system_dirs]
    stems = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
    found = [_find_idx(dirs, s) for s in stems]
    if any(p is None for p in found) and download:
        import torchvision

        try:
            torchvision.datasets.FashionMNIST(str(root), train=True, download=True)
            torchvision.datasets.FashionMNIST(str(root), train=False, download=True)
        except Exception as e:  # offline: URLError, timeouts, checksum failures
            raise DataMissingError(f"{_fashion_mnist_missing(root)}\n(download failed: {type(e).__name__}: {e})") from None
        found = [_find_idx(dirs, s) for s in stems]
    if any(p is None for p in found):
        raise _fashion_mnist_missing(root)
    xtr, ytr, xte, yte = (read_idx(p) for p in found)
    return _make("fashion-mnist", xtr[:, None], ytr, xte[:, None], yte, 10)


# --------------------------------------------------------------------------------------- CIFAR
_CIFAR = {
    "cifar10": ("cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)], ["test_batch"], b"labels", 10),
    "cifar100": ("cifar-100-python", ["train"], ["test"], b"fine_labels", 100),
}


class _CifarUnpickler(pickle.Unpickler):
    """Unpickler of the CIFAR python batches: dicts, lists, bytes and numpy arrays, nothing else.

    A plain ``pickle.load`` runs any callable a file names; a batch placed by hand (or a tampered
    download) could execute code. Only the globals needed to rebuild numpy arrays are allowed.
    """

    _ALLOWED = frozenset({
        ("numpy", "ndarray"), ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
        ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
        ("_codecs", "encode"),  # bytes in protocol-2 pickles written by Python 3
    })

    def find_class(self, module: str, name: str):
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"global '{module}.{name}' is not allowed in a CIFAR batch")
        return super().find_class(module, name)


def _read_cifar_batches(folder: Path, names, label_key) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = [], []
    for n in names:
        f = folder / n
        with open(f, "rb") as fh:
            try:
                d = _CifarUnpickler(fh, encoding="bytes").load()
                x = np.asarray(d[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
                y = np.asarray(d[label_key], dtype=np.int64)
            except Exception as e:  # corrupt pickle, missing key, wrong image size
                raise ValueError(f"{f}: not a CIFAR python batch ({type(e).__name__}: {e})") from None
        if y.shape != (x.shape[0],):
            raise ValueError(f"{f}: {x.shape[0]} images but labels of shape {y.shape}")
        xs.append(x)
        ys.append(y)
    return np.concatenate(xs), np.concatenate(ys)


def load_cifar(name: str, root: str | os.PathLike = DEFAULT_ROOT, *, download: bool = False) -> ImageData:
    """CIFAR-10 / CIFAR-100 (50,000 train / 10,000 test, 3×32×32) from the python pickles."""
    root = Path(root)
    sub, train_names, test_names, key, c = _CIFAR[name]
    folder = root / sub
    missing = [n for n in train_names + test_names if not (folder / n).is_file()]
    failure = ""
    if missing and download:
        import torchvision

        cls = torchvision.datasets.CIFAR10 if name == "cifar10" else torchvision.datasets.CIFAR100
        try:
            cls(str(root), train=True, download=True)
        except Exception as e:  # offline: URLError, timeouts, checksum failures
            failure = f"\n(download failed: {type(e).__name__}: {e})"
        missing = [n for n in train_names + test_names if not (folder / n).is_file()]
    if missing:
        archive = "cifar-10-python.tar.gz" if name == "cifar10" else "cifar-100-python.tar.gz"
        raise DataMissingError(
            f"{name} not found: missing {missing} in {folder}. Get it in one of these ways:\n"
            f"  - online: `dynloss train` (downloads unless --no-download) lets torchvision download "
            f"it into {root};\n"
            f"  - by hand: download {archive} from https://www.cs.toronto.edu/~kriz/ and extract it in {root} "
            f"(giving {folder}/)." + failure
        )
    xtr, ytr = _read_cifar_batches(folder, train_names, key)
    xte, yte = _read_cifar_batches(folder, test_names, key)
    return _make(name, xtr, ytr, xte, yte, c)


# -------------------------------------------------------------------------------------- digits
def load_digits_data() -> ImageData:
    """scikit-learn's bundled digits (1,797 images, 1×8×8, 10 classes), fixed seeded 75/25 split.

    Pixel values 0..16 are scaled to 0..255 uint8.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    images = np.clip(np.rint(d.images * (255.0 / 16.0)), 0, 255).astype(np.uint8)[:, None]
    xtr, xte, ytr, yte = train_test_split(images, d.target.astype(np.int64), test_size=DIGITS_TEST_FRACTION,
                                          random_state=DIGITS_SPLIT_SEED, stratify=d.target)
    return _make("digits", xtr, ytr, xte, yte, 10)


@dataclass(frozen=True)
class Dataset:
    """One dataset: what every part of the project needs to know of it, in one record.

    ``name`` is the cache's name (``data/cache/<preset>/<name>/``); ``paper_name`` the name the
    paper's tables print (``data/paper/*.csv``, the authors' records), ``None`` for a dataset the
    paper did not use; ``aliases`` other spellings accepted on input. ``n_train`` / ``n_test`` are
    the sizes of the official splits (ours for ``digits``: a seeded 75/25 split), ``num_classes``
    the label count. ``load(root, download=...)`` reads it as :class:`ImageData`.
    """

    name: str
    paper_name: str | None
    n_train: int
    n_test: int
    num_classes: int
    loader: Callable[..., ImageData]
    aliases: tuple[str, ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        """Every name this dataset answers to (cache name, the paper's, aliases)."""
        return (self.name, *((self.paper_name,) if self.paper_name else ()), *self.aliases)

    def load(self, root: str | os.PathLike = DEFAULT_ROOT, *, download: bool = False) -> ImageData:
        return self.loader(root, download=download)


def _digits_loader(root: str | os.PathLike = DEFAULT_ROOT, *, download: bool = False) -> ImageData:
    return load_digits_data()


def _cifar_loader(name: str) -> Callable[..., ImageData]:
    def load(root: str | os.PathLike = DEFAULT_ROOT, *, download: bool = False) -> ImageData:
        return load_cifar(name, root, download=download)

    return load


#: every dataset by its cache name
REGISTRY: dict[str, Dataset] = {d.name: d for d in (
    Dataset("digits", None, 1_347, 450, 10, _digits_loader),
    Dataset("fashion-mnist", "FashionMNIST", 60_000, 10_000, 10, load_fashion_mnist,
            aliases=("fmnist", "fashion_mnist")),
    Dataset("cifar10", "CIFAR10", 50_000, 10_000, 10, _cifar_loader("cifar10"), aliases=("cifar-10",)),
    Dataset("cifar100", "CIFAR100", 50_000, 10_000, 100, _cifar_loader("cifar100"), aliases=("cifar-100",)),
)}
#: the cache names (``digits``, ``fashion-mnist``, ``cifar10``, ``cifar100``)
DATASETS: tuple[str, ...] = tuple(REGISTRY)
_BY_NAME: dict[str, Dataset] = {n.lower(): d for d in REGISTRY.values() for n in d.names}


def find_dataset(name: str) -> Dataset | None:
    """The dataset any of whose names (cache, the paper's, alias; any case) is ``name``, or None.

    >>> find_dataset("FashionMNIST").name, find_dataset("cifar10").paper_name, find_dataset("mnist")
    ('fashion-mnist', 'CIFAR10', None)
    """
    return _BY_NAME.get(str(name).lower())


def get_dataset(name: str) -> Dataset:
    """:func:`find_dataset`, refusing an unknown name (``ValueError`` listing the known ones)."""
    d = find_dataset(name)
    if d is None:
        raise ValueError(f"Expected dataset name in {DATASETS} (or the paper's: "
                         f"{', '.join(x.paper_name for x in paper_datasets())}), got {name!r}")
    return d


def paper_datasets() -> tuple[Dataset, ...]:
    """The paper's datasets, in the order of its tables (CIFAR10, CIFAR100, FashionMNIST)."""
    return tuple(sorted((d for d in REGISTRY.values() if d.paper_name), key=lambda d: d.paper_name))


def paper_name(name: str) -> str:
    """The paper's name of a dataset named any way, ``""`` when the paper did not use it.

    >>> paper_name("fashion-mnist"), paper_name("digits"), paper_name("svhn")
    ('FashionMNIST', '', '')
    """
    d = find_dataset(name)
    return (d.paper_name or "") if d is not None else ""


def cache_name(name: str) -> str:
    """The cache's name of a dataset named any way; an unknown name is returned as given.

    >>> cache_name("CIFAR100"), cache_name("other")
    ('cifar100', 'other')
    """
    d = find_dataset(name)
    return d.name if d is not None else name


def load_dataset(name: str, root: str | os.PathLike = DEFAULT_ROOT, *, download: bool = False) -> ImageData:
    """Load a dataset by its cache name (see :data:`DATASETS`).

    Raises
    ------
    DataMissingError
        If the files are missing (the message says how to get them).
    """
    if name not in REGISTRY:
        raise ValueError(f"Expected dataset name in {DATASETS}, got {name!r}")
    return REGISTRY[name].load(root, download=download)


# -------------------------------------------------------------------------------- augmentation
AUGMENTATIONS: tuple[str, ...] = ("none", "flip", "paper")


class Cutout:
    """Zero a ``size``×``size`` square at a uniformly drawn centre (clipped at the border).

    Works on one (C, H, W) tensor; ``generator`` makes it reproducible.
    """

    def __init__(self, size: int = 16):
        self.size = size

    def __call__(self, img, generator=None):
        import torch

        _, h, w = img.shape
        cy = int(torch.randint(0, h, (1,), generator=generator))
        cx = int(torch.randint(0, w, (1,), generator=generator))
        y0, y1 = max(0, cy - self.size // 2), min(h, cy + self.size - self.size // 2)
        x0, x1 = max(0, cx - self.size // 2), min(w, cx + self.size - self.size // 2)
        img = img.clone()
        img[:, y0:y1, x0:x1] = 0
        return img


class PaperAugment:
    """The paper's training augmentation on one uint8 (C, H, W) tensor.

    Random horizontal flip, TrivialAugmentWide, Cutout 16. TrivialAugmentWide draws from torch's
    global generator (seeded per worker by the run), flip and cutout use it too.
    """

    def __init__(self, cutout: int = 16):
        from torchvision.transforms import v2

        self.flip = v2.RandomHorizontalFlip()
        self.trivial = v2.TrivialAugmentWide()
        self.cutout = Cutout(cutout)

    def __call__(self, img):
        return self.cutout(self.trivial(self.flip(img)))


def batch_flip(x, generator):
    """Flip each image of a (..., C, H, W) batch horizontally with probability 1/2 (cheap)."""
    import torch

    flip = torch.rand(x.shape[:-3], generator=generator, device=x.device) < 0.5
    return torch.where(flip[..., None, None, None], x.flip(-1), x)


def resize_images(x, size: int):
    """Images ``x`` of shape (..., C, H, W) resized to (..., C, ``size``, ``size``), bilinear, in one
    batched ``torch.nn.functional.interpolate`` on ``x``'s device.

    As the authors' ``torchvision.transforms.Resize(size)`` does on a tensor: bilinear,
    ``align_corners=False``, and a uint8 input comes back uint8, rounded and clipped to 0..255; a
    float input stays float (no rounding). Antialiasing is off: it changes nothing when enlarging
    (the paper preset upsamples 32 → 128 and 28 → 128) and torchvision's tensor default of the time
    was off. Square inputs only matter here (every dataset is), where ``Resize(size)``, which sets
    the shorter side, gives the same ``size``×``size``. ``size`` equal to the input's returns ``x``.

    >>> import torch
    >>> resize_images(torch.full((2, 3, 1, 8, 8), 7, dtype=torch.uint8), 32).shape
    torch.Size([2, 3, 1, 32, 32])
    """
    import torch

    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"Expected `size` an integer >= 1, got {size!r}")
    if x.ndim < 3:
        raise ValueError(f"Expected images of shape (..., C, H, W), got shape {tuple(x.shape)}")
    if tuple(x.shape[-2:]) == (size, size):
        return x
    lead, (c, h, w) = x.shape[:-3], x.shape[-3:]
    flat = x.reshape(-1, c, h, w)
    out = torch.nn.functional.interpolate(flat if flat.is_floating_point() else flat.float(), size=(size, size),
                                          mode="bilinear", align_corners=False, antialias=False)
    if not x.is_floating_point():
        out = out.round_().clamp_(0, 255).to(x.dtype)
    return out.reshape(*lead, c, size, size)
