"""Malformed input never escapes as anything but DataError, and decoding is safe from many threads.

The fuzz cases are random truncations and bit flips of valid files (zip, PNG, JPEG, IDX raw and
gzip, npz compressed and not), with a fixed seed: the same cases on every run. A case passes when
the loader returns images (a skip counted in the report is fine) or raises DataError.
"""

from __future__ import annotations

import gzip
import io
import struct
import threading
import zipfile
import zlib
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from PIL import Image, ImageFile

from gan import DataError, Limits, load_images
from gan.data import decode_image, read_idx

CASES_PER_KIND = 50  # x 7 kinds = 350 cases


def _png(rng: np.random.Generator, size: int = 24) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (size, size + 4, 3), dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def _jpeg(rng: np.random.Generator, size: int = 24) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def _valid_files() -> dict[str, bytes]:
    rng = np.random.default_rng(7)
    zbuf = io.BytesIO()
    with zipfile.ZipFile(zbuf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("a/1.png", _png(rng))
        z.writestr("b.jpg", _jpeg(rng))
        z.writestr("c.png", _png(rng), compress_type=zipfile.ZIP_STORED)
    idx = struct.pack(">BBBBIII", 0, 0, 8, 3, 3, 12, 12) + rng.integers(0, 255, 3 * 144, dtype=np.uint8).tobytes()
    npz, npz_c = io.BytesIO(), io.BytesIO()
    np.savez(npz, images=rng.integers(0, 255, (3, 12, 12, 3), dtype=np.uint8))
    np.savez_compressed(npz_c, images=rng.random((3, 12, 12)).astype(np.float32))
    return {
        "data.zip": zbuf.getvalue(),
        "img.png": _png(rng),
        "img.jpg": _jpeg(rng),
        "train-images-idx3-ubyte": idx,
        "t10k-images-idx3-ubyte.gz": gzip.compress(idx),
        "arr.npz": npz.getvalue(),
        "arrc.npz": npz_c.getvalue(),
    }


def _mutate(data: bytes, rng: np.random.Generator) -> bytes:
    b = bytearray(data)
    kind = rng.integers(0, 3)
    if kind in (0, 2):  # bit flips, anywhere (headers are where they hurt)
        n = int(rng.integers(1, 9))
        for pos in rng.integers(0, len(b), n):
            b[pos] ^= 1 << int(rng.integers(0, 8))
    if kind in (1, 2):  # truncation
        b = b[: int(rng.integers(0, len(b)))]
    return bytes(b)


def test_fuzzed_files_raise_only_data_error(tmp_path):
    valid = _valid_files()
    limits = Limits(max_total_bytes=8 << 20, max_image_pixels=4_000_000)
    for name, data in valid.items():  # the originals load
        (tmp_path / name).write_bytes(data)
        source = tmp_path / name if not name.endswith((".png", ".jpg")) else tmp_path
        assert len(load_images(source, 16, 3, limits=limits)) >= 1, name
        (tmp_path / name).unlink()
    rng = np.random.default_rng(20261130)
    outcomes = {"loaded": 0, "DataError": 0}
    for name, data in valid.items():
        for i in range(CASES_PER_KIND):
            bad = _mutate(data, rng)
            case = tmp_path / f"{name}-{i}"
            case.mkdir()
            (case / name).write_bytes(bad)
            source = case if name.endswith((".png", ".jpg")) else case / name
            try:
                got = load_images(source, 16, 3, limits=limits)
                assert got.images.shape[1:] == (3, 16, 16)
                outcomes["loaded"] += 1
            except DataError as e:
                assert str(e), name
                outcomes["DataError"] += 1
            except Exception as e:  # pragma: no cover - the failure this test is for
                pytest.fail(f"{name}, case {i} ({len(bad)} of {len(data)} bytes): {type(e).__name__}: {e}")
            # the low-level readers too
            if "idx" in name:
                try:
                    read_idx(bad)
                except DataError:
                    pass
            if name.endswith((".png", ".jpg")):
                arr, reason, _ = decode_image(bad, 16, 3, 4_000_000)
                assert (arr is None) != (reason is None)
    assert sum(outcomes.values()) == CASES_PER_KIND * len(valid)
    assert outcomes["DataError"] > 50 and outcomes["loaded"] > 20, outcomes  # both paths exercised


# ---------------------------------------------------------------------------------------------
# decoding from several threads at once


def _png_bomb(side: int) -> bytes:
    """A real decompression bomb: a side x side grayscale PNG of zeros, a few hundred KB on disk."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    z = zlib.compressobj(9)
    row = b"\0" * (side + 1)  # filter byte + pixels
    idat = b"".join(z.compress(row) for _ in range(side)) + z.flush()
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def test_decoding_from_many_threads_gives_each_its_own_answer():
    bomb = _png_bomb(9_000)  # 81 M pixels (under Pillow's own warning level, 89 M)
    assert len(bomb) < 1 << 20
    a = np.zeros((1500, 1500, 3), np.uint8)
    a[:, :750] = (250, 20, 20)
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="JPEG", quality=85)
    good = buf.getvalue()  # 2.25 M pixels
    truncated = good[: len(good) // 2]
    # per-call limits that differ: a process-wide Pillow limit set by one call would refuse the good
    # image of another (2.25 M > 2 x 1 M raises DecompressionBombError inside Image.open)
    jobs = [("good", good, 4_000_000), ("bomb", bomb, 1_000_000), ("truncated", truncated, 4_000_000)] * 40
    saw_globals: set[tuple] = set()
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            saw_globals.add((Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES))

    def run(job: tuple[str, bytes, int]) -> tuple[str, np.ndarray | None, str | None]:
        kind, data, max_pixels = job
        arr, reason, _ = decode_image(data, 16, 3, max_pixels)
        return kind, arr, reason

    before = (Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES)
    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        with ThreadPoolExecutor(4) as pool:
            results = list(pool.map(run, jobs))
    finally:
        stop.set()
        watcher.join()
    for kind, arr, reason in results:
        if kind == "good":
            assert reason is None and arr is not None
            assert arr[0, :, :6].mean() > 200 and arr[0, :, 10:].mean() < 60  # red left, black right
        elif kind == "bomb":
            assert arr is None and reason == "image too large (over 1,000,000 pixels; decompression bomb guard)"
        else:
            assert arr is None and reason == "truncated or corrupt image"
    assert saw_globals == {before}  # Pillow's process-wide settings were never touched
