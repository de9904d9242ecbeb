"""Every image source and every kind of bad input named in the core and reliability issues."""

import gzip
import struct
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from gan import DataError, Limits, fit, load_images, make_synthetic
from gan.data import augment_classic, diffaugment, read_idx

from conftest import TINY, png_bytes, tiny_train


def test_folder_recursive_any_layout(image_folder):
    d = load_images(image_folder, 16, 3)
    assert d.images.shape == (6, 3, 16, 16) and d.images.dtype == torch.uint8
    assert d.report.n_ok == 6 and d.report.n_skipped == 0


def test_modes_are_converted(tmp_path):
    f = tmp_path / "m"
    f.mkdir()
    Image.new("RGBA", (10, 10), (255, 0, 0, 0)).save(f / "transparent.png")  # -> white
    Image.new("P", (10, 10), 3).save(f / "palette.png")
    Image.fromarray(np.full((12, 8), 65535, np.uint16)).save(f / "sixteen.png")  # 16-bit -> white
    Image.new("CMYK", (10, 10), (0, 255, 255, 0)).save(f / "cmyk.jpg")  # red
    Image.new("L", (10, 10), 128).save(f / "gray.png")
    d = load_images(f, 16, 3)
    assert d.report.n_ok == 5, d.report.summary()
    by = dict(zip(sorted(p.name for p in f.iterdir()), d.images))
    assert by["transparent.png"].min() == 255
    assert by["sixteen.png"].min() >= 254
    r, g, b = by["cmyk.jpg"].float().mean((1, 2))
    assert r > 200 and g < 60 and b < 60
    gray = load_images(f, 16, 1)
    assert gray.images.shape == (5, 1, 16, 16)


def test_center_crop_and_antialiased_resize(tmp_path):
    a = np.zeros((40, 80, 3), np.uint8)
    a[:, 20:60] = 255  # the centre square is white, the sides black
    Image.fromarray(a).save(tmp_path / "wide.png")
    d = load_images(tmp_path, 16, 3)
    assert d.images.min() >= 250


def test_bad_files_are_skipped_and_counted(tmp_path):
    f = tmp_path / "bad"
    f.mkdir()
    (f / "ok.png").write_bytes(png_bytes())
    (f / "empty.jpg").write_bytes(b"")
    (f / "notes.txt").write_text("hello")
    jpg = png_bytes(fmt="JPEG", size=(64, 64))
    (f / "truncated.jpg").write_bytes(jpg[: len(jpg) // 2])
    png = png_bytes(size=(64, 64))
    (f / "truncated.png").write_bytes(png[:60])
    (f / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    d = load_images(f, 16, 3)
    r = d.report
    assert r.n_ok == 1
    assert r.skipped["empty file (0 bytes)"] == 1
    assert r.skipped["not an image"] == 1
    assert r.skipped["truncated or corrupt image"] == 2
    assert r.skipped["system file (__MACOSX, .DS_Store, ._*)"] == 1
    assert "notes.txt" in r.summary() and "5 files skipped" in r.summary()


def test_animated_gif_uses_first_frame(tmp_path):
    frames = [Image.new("RGB", (10, 10), c) for c in [(255, 0, 0), (0, 0, 255)]]
    frames[0].save(tmp_path / "a.gif", save_all=True, append_images=frames[1:])
    d = load_images(tmp_path, 16, 3)
    assert d.report.notes == {"animated image: first frame used": 1}
    assert d.images[0, 0].float().mean() > 200  # red


def test_decompression_bomb_and_huge_image_are_refused(tmp_path):
    Image.new("L", (3000, 3000)).save(tmp_path / "big.png")
    d_small = Limits(max_image_pixels=1_000_000)
    (tmp_path / "ok.png").write_bytes(png_bytes())
    d = load_images(tmp_path, 16, 3, limits=d_small)
    assert d.report.n_ok == 1
    [reason] = d.report.skipped
    assert "1,000,000 pixels" in reason


def test_zero_usable_images_is_a_clear_error(tmp_path):
    (tmp_path / "a.txt").write_text("x")
    (tmp_path / "b.jpg").write_bytes(b"")
    with pytest.raises(DataError, match=r"no usable images .*1 not an image.*1 empty file"):
        load_images(tmp_path, 16, 3)
    empty = tmp_path / "nothing"
    empty.mkdir()
    with pytest.raises(DataError, match="has no files"):
        load_images(empty, 16, 3)
    with pytest.raises(DataError, match="does not exist"):
        load_images(tmp_path / "missing", 16, 3)


def _zip(path, entries):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in entries.items():
            z.writestr(name, data)
    return path


def test_zip_source_and_unsafe_entries(tmp_path):
    z = _zip(
        tmp_path / "d.zip",
        {
            "cats/1.png": png_bytes(),
            "2.jpg": png_bytes(fmt="JPEG"),
            "../evil.png": png_bytes(),
            "/abs.png": png_bytes(),
            "__MACOSX/cats/._1.png": b"junk",
        },
    )
    d = load_images(z, 16, 3)
    assert d.report.n_ok == 2
    assert d.report.skipped["unsafe path in zip (absolute or '..'); not read"] == 2
    assert not (tmp_path.parent / "evil.png").exists()


def test_zip_bomb_and_limits_checked_before_reading(tmp_path):
    bomb = _zip(tmp_path / "bomb.zip", {"zeros.png": b"\0" * (20 << 20)})
    with pytest.raises(DataError, match="zip bomb"):
        load_images(bomb, 16, 3)
    with pytest.raises(DataError, match="would unpack to"):
        load_images(bomb, 16, 3, limits=Limits(max_total_bytes=1 << 20))
    many = _zip(tmp_path / "many.zip", {f"{i}.png": b"x" for i in range(30)})
    with pytest.raises(DataError, match="has 30 files; the limit is 10"):
        load_images(many, 16, 3, limits=Limits(max_files=10))
    empty = _zip(tmp_path / "empty.zip", {})
    with pytest.raises(DataError, match="empty zip"):
        load_images(empty, 16, 3)
    (tmp_path / "fake.zip").write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(DataError, match="not a folder, .zip"):
        load_images(tmp_path / "fake.zip", 16, 3)


def test_max_images_limit_counts_the_rest(tmp_path):
    for i in range(5):
        (tmp_path / f"{i}.png").write_bytes(png_bytes())
    d = load_images(tmp_path, 16, 3, limits=Limits(max_images=3))
    assert d.report.n_ok == 3 and d.report.skipped["over the limit of 3 images"] == 2


def test_npz_and_idx(tmp_path):
    np.savez(tmp_path / "a.npz", images=np.random.default_rng(0).integers(0, 255, (5, 28, 28, 3), dtype=np.uint8))
    d = load_images(tmp_path / "a.npz", 16, 1)
    assert d.images.shape == (5, 1, 16, 16)
    np.savez(tmp_path / "b.npz", pics=np.zeros((2, 8, 8)))
    with pytest.raises(DataError, match="no array named 'images'"):
        load_images(tmp_path / "b.npz", 16, 1)
    arr = np.arange(3 * 28 * 28, dtype=np.uint8).reshape(3, 28, 28)
    raw = struct.pack(">BBBB", 0, 0, 8, 3) + struct.pack(">III", 3, 28, 28) + arr.tobytes()
    assert np.array_equal(read_idx(gzip.compress(raw)), arr)
    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(raw))
    d = load_images(tmp_path / "t10k-images-idx3-ubyte.gz", 32, 1)
    assert d.images.shape == (3, 1, 32, 32)


def test_synthetic_is_deterministic_and_varied():
    a, b = make_synthetic(64, 32, 3, seed=1), make_synthetic(64, 32, 3, seed=1)
    assert torch.equal(a, b)
    assert not torch.equal(a, make_synthetic(64, 32, 3, seed=2))
    assert a.float().std(0).mean() > 20  # images differ from one another
    assert make_synthetic(8, 16, 1).shape == (8, 1, 16, 16)


def test_fewer_images_than_one_batch_still_trains(tmp_path):
    for i in range(3):
        (tmp_path / f"{i}.png").write_bytes(png_bytes(color=(i * 80, 50, 50)))
    d = load_images(tmp_path, 16, 3)
    evs = list(fit(TINY, tiny_train(steps=3, batch_size=16), d, out_dir=tmp_path / "run"))
    assert evs[-1].reason == "finished"


def test_augmentations_keep_shape_and_are_seeded():
    x = torch.rand(4, 3, 16, 16) * 2 - 1
    for aug in (diffaugment, augment_classic):
        y1 = aug(x, torch.Generator().manual_seed(0))
        y2 = aug(x, torch.Generator().manual_seed(0))
        assert y1.shape == x.shape and torch.equal(y1, y2) and not torch.equal(y1, x)
    xr = x.clone().requires_grad_(True)
    diffaugment(xr, torch.Generator().manual_seed(0)).sum().backward()
    assert xr.grad is not None and xr.grad.abs().sum() > 0  # differentiable for the G step
