"""Budgets for data as a whole (gan.budget): checked from listings and headers before anything is decoded.

The bombs are built here without ever holding their contents: an .npz of 1.5 GB of zeros is written
as a .npy header and one deflate block of zeros repeated (~1.4 MB on disk, built in a fraction of a
second), and peak memory is measured in a fresh process.
"""

from __future__ import annotations

import gzip
import io
import json
import math
import os
import struct
import subprocess
import sys
import time
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import gan.arrays
import gan.budget
import gan.data
from gan import DataError, Limits, load_files, load_images
from gan.budget import MB, SPACE_DATA_MB, SPACE_DECODE_MPIX, local_data_bytes

from conftest import png_bytes

ROOT = Path(__file__).resolve().parents[1]
BOMB_SHAPE = (30_000, 3, 128, 128)  # 1,474,560,000 bytes of uint8 zeros


def npz_bomb(path: Path, shape: tuple[int, ...], descr: str = "|u1") -> Path:
    """An .npz whose 'images.npy' is a valid .npy of zeros, deflated, written without holding it:
    the zip is written by hand around one compressed block of 16 MB of zeros repeated (a deflate
    block after a window of zeros decodes to zeros wherever it is put)."""
    h = io.BytesIO()
    np.lib.format.write_array_header_1_0(h, {"descr": descr, "fortran_order": False, "shape": shape})
    header, n = h.getvalue(), math.prod(shape) * np.dtype(descr).itemsize
    zero = bytes(16 << 20)
    c = zlib.compressobj(6, zlib.DEFLATED, -15)  # raw deflate, as zip stores it
    first = min(n, 1 << 15)  # fills the window with zeros
    parts, crc = [c.compress(header + zero[:first]), c.flush(zlib.Z_SYNC_FLUSH)], zlib.crc32(header + zero[:first])
    full, rest = divmod(n - first, len(zero))
    block = c.compress(zero) + c.flush(zlib.Z_SYNC_FLUSH)
    parts.append(block * full)
    for _ in range(full):
        crc = zlib.crc32(zero, crc)
    parts += [c.compress(zero[:rest]), c.flush()]
    crc = zlib.crc32(zero[:rest], crc)
    data, name = b"".join(parts), b"images.npy"
    size = len(header) + n
    local = struct.pack("<4s5H3I2H", b"PK\3\4", 20, 0, 8, 0, 0, crc, len(data), size, len(name), 0) + name
    central = struct.pack("<4s6H3I5H2I", b"PK\1\2", 20, 20, 0, 8, 0, 0, crc, len(data), size, len(name), 0, 0, 0, 0,
                          0, 0) + name  # fmt: skip
    end = struct.pack("<4s4H2IH", b"PK\5\6", 0, 0, 1, 1, len(central), len(local) + len(data), 0)
    path.write_bytes(local + data + central + end)
    return path


def test_the_npz_bomb_is_a_real_one(tmp_path):
    """The test bomb is what it claims: zipfile reads it back (CRC verified) as a .npy of that shape."""
    small = npz_bomb(tmp_path / "small.npz", (300, 3, 128, 128))
    a = np.load(small)["images"]
    assert a.shape == (300, 3, 128, 128) and a.dtype == np.uint8 and not a.any()
    t = time.perf_counter()
    bomb = npz_bomb(tmp_path / "bomb.npz", BOMB_SHAPE)
    assert time.perf_counter() - t < 5
    with zipfile.ZipFile(bomb) as z:
        info = z.getinfo("images.npy")
        assert info.file_size > 1_474_560_000 and info.compress_size < 2 << 20
    assert bomb.stat().st_size < 2 << 20


MEASURE = r"""
import json, resource, sys
from gan import DataError, Limits, load_images
from gan.budget import MB

def peak():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB

load_images("synthetic", 8, 3, n_synthetic=8)  # imports and first-use allocations out of the way
base, out = peak(), []
for limits in (Limits(), Limits(max_ratio=10**6, max_data_bytes=512 * MB)):
    try:
        load_images(sys.argv[1], 128, 3, limits=limits)
        msg = None
    except DataError as e:
        msg = str(e)
    out.append({"message": msg, "rise": peak() - base})
print(json.dumps(out))
"""


def test_npz_bomb_is_refused_before_allocation(tmp_path):
    bomb = npz_bomb(tmp_path / "bomb.npz", BOMB_SHAPE)
    r = subprocess.run([sys.executable, "-c", MEASURE, str(bomb)], capture_output=True, text=True, timeout=120,
                       cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})  # fmt: skip
    assert r.returncode == 0, r.stderr
    by_ratio, by_budget = json.loads(r.stdout.strip().splitlines()[-1])
    # the ratio, from the zip listing (as for a zip entry)
    assert "'images.npy' expands 1028x (limit 250x" in by_ratio["message"], by_ratio
    # with the ratio check out of the way, the data budget, from the .npy header
    msg = by_budget["message"]
    assert msg.startswith("bomb.npz: 30,000 images at 128x128 (3 channels) need 1,474,560,000 bytes"), msg
    assert "plus 1,474,560,000 bytes (1,475 MB) for the source array" in msg
    assert "the data budget is 512,000,000 bytes (512 MB) (GAN_MAX_DATA_MB)" in msg
    assert "fewer images, a smaller image size, or raise GAN_MAX_DATA_MB" in msg
    for case in (by_ratio, by_budget):
        assert case["rise"] < 50 * MB, (case["rise"], case["message"])
    print(f"peak RSS rise: ratio {by_ratio['rise'] / MB:.1f} MB, budget {by_budget['rise'] / MB:.1f} MB")


def _npy(shape: tuple[int, ...], payload: int, descr: str = "|u1") -> bytes:
    """A .npy header for `shape` followed by `payload` zero bytes, whatever the shape needs."""
    h = io.BytesIO()
    np.lib.format.write_array_header_1_0(h, {"descr": descr, "fortran_order": False, "shape": shape})
    return h.getvalue() + bytes(payload)


def test_npz_header_must_match_the_member_size(tmp_path):
    needs = r"\(shape \(10, 8, 8\) needs 640 bytes, it has"
    cases = {
        "long.npz": (_npy((10, 8, 8), 1640), rf"'images' is inconsistent {needs} 1,640 bytes\)"),
        "short.npz": (_npy((10, 8, 8), 100), rf"'images' is truncated {needs} 100 bytes\)"),
        "text.npz": (_npy((10, 8, 8), 2560, "<U1"), "images must be integers or floats, got dtype <U1"),
        "flat.npz": (_npy((640,), 640), r"expected images shaped \(N,H,W\), \(N,H,W,C\) or \(N,C,H,W\); got \(640,\)"),
    }  # fmt: skip
    for name, (npy, msg) in cases.items():
        with zipfile.ZipFile(tmp_path / name, "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr("images.npy", npy)
        with pytest.raises(DataError, match=msg):
            load_images(tmp_path / name, 16, 1)


def test_zip_of_100k_tiny_pngs_is_refused_from_its_listing(tmp_path, monkeypatch):
    z = tmp_path / "many.zip"
    one = png_bytes(size=(1, 1))
    with zipfile.ZipFile(z, "w", zipfile.ZIP_STORED) as f:
        for i in range(100_000):
            f.writestr(f"{i}.png", one)
    assert z.stat().st_size < 20 << 20

    def never(*a, **k):  # refused from the listing: not one entry is decoded
        raise AssertionError("an image was decoded")

    monkeypatch.setattr(gan.data, "decode_image", never)
    space = Limits.from_env({}, on_space=True)
    assert space.max_files == 100_000  # the file count passes: the data budget refuses it
    t = time.perf_counter()
    with pytest.raises(DataError) as e:
        load_images(z, 128, 3, limits=space)
    assert time.perf_counter() - t < 5
    assert str(e.value) == (
        "many.zip: 100,000 images at 128x128 (3 channels) need 4,915,200,000 bytes (4,915 MB) in memory; the data "
        "budget is 512,000,000 bytes (512 MB) (GAN_MAX_DATA_MB). Use fewer images, a smaller image size, or raise "
        "GAN_MAX_DATA_MB."
    )


def test_decode_budget_refuses_large_one_colour_pngs(tmp_path):
    big = png_bytes(size=(2000, 2000))  # 4 M pixels, a few KB
    z = tmp_path / "big.zip"
    with zipfile.ZipFile(z, "w") as f:
        for i in range(5):
            f.writestr(f"{i}.png", big)
    t = time.perf_counter()
    with pytest.raises(DataError) as e:
        load_images(z, 32, 3, limits=Limits(max_decode_pixels=10 * MB))
    assert time.perf_counter() - t < 3
    assert str(e.value).startswith(
        "big.zip: its images hold over 10 megapixels at their own resolution (the decode budget, "
        "GAN_MAX_DECODE_MPIX; 8 M in 2 images decoded, the next is 2000x2000)"
    )
    assert len(load_images(z, 32, 3, limits=Limits(max_decode_pixels=20 * MB))) == 5  # 20 M: within
    # a JPEG is charged at its reduced decoding scale: 4000x3000 read at 1/8 for 64 px is 500x375
    (tmp_path / "photos").mkdir()
    Image.new("RGB", (4000, 3000), (10, 200, 30)).save(tmp_path / "photos/photo.jpg")
    assert len(load_images(tmp_path / "photos", 64, 3, limits=Limits(max_decode_pixels=1 * MB))) == 1


def test_cli_refuses_an_npz_bomb_with_the_budget_message(tmp_path):
    bomb = npz_bomb(tmp_path / "bomb.npz", BOMB_SHAPE)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "GAN_MAX_DATA_MB": "64", "GAN_MAX_ZIP_RATIO": "1000000"}
    with open(tmp_path / "out", "w+") as out, open(tmp_path / "err", "w+") as err:
        args = ["train", "--data", bomb, "--out", tmp_path / "run", "--image-size", "128", "--steps", "1"]
        # the CLI's own main, then its peak memory: VmHWM of this process (ru_maxrss would carry the high-water
        # mark of the pytest process it was forked from, which training tests make large)
        wrapper = (
            "import sys, atexit, pathlib\n"
            "atexit.register(lambda: print(next(l for l in pathlib.Path('/proc/self/status').read_text()"
            ".splitlines() if l.startswith('VmHWM')), flush=True))\n"
            "from gan.__main__ import main\n"
            "sys.exit(main(sys.argv[1:]))\n"
        )
        p = subprocess.Popen([sys.executable, "-c", wrapper, *map(str, args)], stdout=out, stderr=err, cwd=ROOT,
                             env=env)  # fmt: skip
        p.wait(120)
    stderr = (tmp_path / "err").read_text()
    peak_kb = int((tmp_path / "out").read_text().split("VmHWM:")[1].split()[0])
    assert p.returncode == 2, stderr
    assert stderr.strip().splitlines()[-1] == (
        "error: bomb.npz: 30,000 images at 128x128 (3 channels) need 1,474,560,000 bytes (1,475 MB) in memory, plus "
        "1,474,560,000 bytes (1,475 MB) for the source array while it is converted; the data budget is 64,000,000 "
        "bytes (64 MB) (GAN_MAX_DATA_MB). Use fewer images, a smaller image size, or raise GAN_MAX_DATA_MB."
    )
    assert peak_kb * 1024 < 1_000 * MB  # the process (torch included) never held the 1.5 GB array
    assert not (tmp_path / "run").exists()


def test_limits_defaults_and_environment():
    space = Limits.from_env({}, on_space=True)
    assert (space.max_data_bytes, space.max_decode_pixels) == (SPACE_DATA_MB * MB, SPACE_DECODE_MPIX * MB)
    assert Limits.from_env({"SPACE_ID": "me/gan-lab"}) == space  # a Space is recognised by itself
    local = Limits.from_env({})
    assert local == Limits() and local.max_data_bytes == local_data_bytes()
    assert 512 * MB <= local.max_data_bytes <= 16_000 * MB and local.max_decode_pixels > 100 * space.max_decode_pixels
    env = Limits.from_env({"GAN_MAX_DATA_MB": "100", "GAN_MAX_DECODE_MPIX": "0"}, on_space=True)
    assert env.max_data_bytes == 100 * MB and env.max_decode_pixels == 0  # 0: no decode budget
    with pytest.raises(DataError, match="GAN_MAX_DATA_MB must be an integer"):
        Limits.from_env({"GAN_MAX_DATA_MB": "lots"})
    with pytest.raises(DataError, match="GAN_MAX_DECODE_MPIX must not be negative"):
        Limits.from_env({"GAN_MAX_DECODE_MPIX": "-1"})


def test_data_budget_from_folder_idx_and_uploads_before_decoding(tmp_path, monkeypatch):
    def never(*a, **k):
        raise AssertionError("decoded before the budget was checked")

    monkeypatch.setattr(gan.data, "decode_image", never)
    monkeypatch.setattr(gan.data, "read_idx", never)
    small = Limits(max_data_bytes=1 * MB)  # 1 MB: 102 images of 3 x 57 x 57
    folder = tmp_path / "f"
    folder.mkdir()
    for i in range(120):
        (folder / f"{i}.png").write_bytes(b"")
    with pytest.raises(DataError, match=r"^f: 120 images at 57x57 \(3 channels\) need 1,169,640 bytes"):
        load_images(folder, 57, 3, limits=small)
    raw = struct.pack(">BBBBIII", 0, 0, 8, 3, 1000, 28, 28) + bytes(1000 * 28 * 28)
    (tmp_path / "t-images-idx3-ubyte.gz").write_bytes(gzip.compress(raw))
    with pytest.raises(
        DataError, match=r"1,000 images at 32x32 \(3 channels\) need 3,072,000 bytes .* plus 78[45],\d{3} bytes"
    ):
        load_images(tmp_path / "t-images-idx3-ubyte.gz", 32, 3, limits=small)
    with zipfile.ZipFile(tmp_path / "a.zip", "w") as f:  # an IDX file inside a zip: counted from its header
        f.writestr("mnist/train-images-idx3-ubyte", raw)
    with pytest.raises(DataError, match=r"^a\.zip: 1,000 images at 32x32"):
        load_images(tmp_path / "a.zip", 32, 3, limits=small)
    # uploads: each zip is within the budget, the two together are not
    for name in ("b.zip", "c.zip"):
        with zipfile.ZipFile(tmp_path / name, "w") as f:
            for i in range(60):
                f.writestr(f"{i}.png", b"")
    for name in ("b.zip", "c.zip"):
        with pytest.raises(AssertionError):  # passes the budget, then reaches the (refusing) decoder
            load_images(tmp_path / name, 57, 3, limits=small)
    with pytest.raises(DataError, match=r"^b\.zip \+ c\.zip: 120 images at 57x57"):
        load_files([tmp_path / "b.zip", tmp_path / "c.zip"], 57, 3, limits=small)


def test_data_budget_while_decoding_images_not_named_as_images(tmp_path):
    """Files not named like images are not counted in the listing but still decoded: the budget is
    checked again as they arrive."""
    with zipfile.ZipFile(tmp_path / "odd.zip", "w") as f:
        for i in range(30):
            f.writestr(f"{i}.dat", png_bytes())
    d = load_images(tmp_path / "odd.zip", 16, 3, limits=Limits(max_data_bytes=30 * 3 * 16 * 16))
    assert len(d) == 30
    with pytest.raises(DataError, match=r"^odd\.zip: 30 images decoded so far at 16x16 \(3 channels\) need 23,040"):
        load_images(tmp_path / "odd.zip", 16, 3, limits=Limits(max_data_bytes=29 * 3 * 16 * 16))


def test_float_arrays_are_converted_in_chunks(tmp_path, monkeypatch):
    """A float array is scaled by its whole range and converted a chunk at a time: the same images as
    in one piece (a float32 copy of the whole array is never made)."""
    rng = np.random.default_rng(0)
    a = rng.random((40, 20, 24, 3)).astype(np.float32)  # channels last; [0, 1] but for one image:
    a[30] -= 1  # the whole array is in [-1, 1], so every chunk is scaled as [-1, 1]
    a[3, 0, 0, 0] = np.nan
    np.savez(tmp_path / "f.npz", images=a)
    whole = load_images(tmp_path / "f.npz", 16, 3).images
    monkeypatch.setattr(gan.arrays, "CHUNK_BYTES", 3 * 20 * 24 * 4 * 3)  # 3 images per chunk
    chunked = load_images(tmp_path / "f.npz", 16, 3).images
    assert chunked.shape == (40, 3, 16, 16) and bool((chunked == whole).all())
    ref = (a[5, :, 2:22] + 1) * 127.5  # [-1, 1] -> [0, 255], the centre square
    assert abs(float(chunked[5].float().mean()) - float(ref.mean())) < 2


def test_image_pile_joins_blocks_in_order(monkeypatch):
    """Images arrive one at a time (into blocks) and as whole arrays; the pile gives them back in order."""
    monkeypatch.setattr(gan.budget, "BLOCK_BYTES", 5 * 3 * 4 * 4)  # 5 images per block
    pile = gan.budget.ImagePile(4, 3, Limits(), "t")
    ones = [np.full((3, 4, 4), i, np.uint8) for i in range(12)]
    for im in ones[:7]:
        pile.add(im)
    pile.add_array(np.stack(ones[7:9]))
    for im in ones[9:]:
        pile.add(im)
    assert len(pile) == 12
    a = pile.array()
    assert a.shape == (12, 3, 4, 4) and a.flags.c_contiguous and a[:, 0, 0, 0].tolist() == list(range(12))
