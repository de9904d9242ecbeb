"""Every image source and every kind of bad input named in the core and reliability issues."""

import gzip
import struct
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

import gan
from gan import DataError, Limits, fit, load_images, make_synthetic
from gan.augment import augment_classic, diffaugment
from gan.data import read_idx

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
    # ImageOps.fit resamples the crop box within the whole image, so the filter's support may reach a
    # little past the crop (as when resizing first and cropping after): the outer columns blend slightly
    assert d.images[..., 1:-1].min() >= 250 and d.images.min() >= 220


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
    with pytest.raises(DataError, match=r"^fake\.zip is not a valid zip archive$"):
        load_images(tmp_path / "fake.zip", 16, 3)
    (tmp_path / "notes.zip").write_text("just a text file renamed")
    with pytest.raises(DataError, match=r"^notes\.zip is not a valid zip archive$"):
        load_images(tmp_path / "notes.zip", 16, 3)
    (tmp_path / "notes.txt").write_text("just a text file")
    with pytest.raises(DataError, match="notes.txt is not a folder, .zip"):
        load_images(tmp_path / "notes.txt", 16, 3)


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


def test_exif_orientation_is_applied(tmp_path):
    # stored upright: top half red, bottom half blue; EXIF orientation 6 says "rotate 90° clockwise to view"
    a = np.zeros((32, 32, 3), np.uint8)
    a[:16] = (255, 0, 0)
    a[16:] = (0, 0, 255)
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(a).save(tmp_path / "phone.jpg", quality=95, exif=exif)
    Image.fromarray(a).save(tmp_path / "plain.jpg", quality=95)
    d = load_images(tmp_path, 16, 3)
    by = dict(zip(sorted(p.name for p in tmp_path.iterdir()), d.images.float()))
    phone, plain = by["phone.jpg"], by["plain.jpg"]
    # viewed as the camera meant: the top turned to the right, so red right, blue left
    assert phone[0, :, 12:].mean() > 200 and phone[2, :, 12:].mean() < 60
    assert phone[2, :, :4].mean() > 200 and phone[0, :, :4].mean() < 60
    assert plain[0, :4].mean() > 200 and plain[2, 12:].mean() > 200  # no tag: as stored


def test_load_files_merges_uploads(tmp_path):
    up = tmp_path / "up"
    up.mkdir()
    for i in range(3):
        (up / f"{i}.png").write_bytes(png_bytes(color=(i * 80, 50, 50)))
    (up / "notes.txt").write_text("not a picture")
    _zip(up / "more.zip", {"a.png": png_bytes(), "b.jpg": b"", "c/d.png": png_bytes()})
    np.savez(up / "arr.npz", images=np.zeros((4, 10, 10, 3), np.uint8))
    arr = np.zeros((2, 28, 28), np.uint8)
    (up / "train-images-idx3-ubyte").write_bytes(struct.pack(">BBBBIII", 0, 0, 8, 3, 2, 28, 28) + arr.tobytes())
    d = gan.load_files(sorted(up.iterdir()), 16, 3)
    assert d.images.shape == (2 + 3 + 2 + 4, 3, 16, 16)
    r = d.report
    assert r.n_ok == 11 and r.n_skipped == 2
    assert r.skipped == {"empty file (0 bytes)": 1, "not an image": 1}
    assert r.examples == {"empty file (0 bytes)": ["b.jpg"], "not an image": ["notes.txt"]}
    assert r.source == "arr.npz + more.zip + train-images-idx3-ubyte + 4 uploaded files"
    one = gan.load_files([up / "0.png"], 16, 1)
    assert one.images.shape == (1, 1, 16, 16) and one.report.source == "1 uploaded file"
    capped = gan.load_files(sorted(up.iterdir()), 16, 3, Limits(max_images=5))
    assert len(capped) == 5 and capped.report.n_ok == 5
    (up / "fake.zip").write_text("a text file with a zip name")
    with pytest.raises(DataError, match=r"^fake\.zip is not a valid zip archive$"):
        gan.load_files([up / "0.png", up / "fake.zip"], 16, 3)
    with pytest.raises(DataError, match="no files given"):
        gan.load_files([], 16, 3)
    with pytest.raises(DataError, match="'gone.png' does not exist"):
        gan.load_files([up / "gone.png"], 16, 3)
    with pytest.raises(DataError, match=r"no usable images in 1 uploaded file \(1 not an image\)"):
        gan.load_files([up / "notes.txt"], 16, 3)


def test_malformed_idx_and_npz_raise_data_error(tmp_path):
    arr = np.arange(2 * 4 * 4, dtype=np.uint8).reshape(2, 4, 4)
    raw = struct.pack(">BBBBIII", 0, 0, 8, 3, 2, 4, 4) + arr.tobytes()
    for cut, msg in [(6, "the IDX header is truncated"), (20, "is truncated: dimensions"), (2, "not an unsigned-byte")]:
        with pytest.raises(DataError, match=msg):
            read_idx(raw[:cut])
    with pytest.raises(DataError, match="gzip stream ends early"):
        read_idx(gzip.compress(raw)[:-12])
    with pytest.raises(DataError, match="unpacks to over 100 bytes"):
        read_idx(gzip.compress(b"\0" * 1000), limit=100)
    (tmp_path / "t-images-idx3-ubyte").write_bytes(raw[:7])
    with pytest.raises(DataError, match=r"t-images-idx3-ubyte: the IDX header is truncated \(7 bytes, 16 needed\)"):
        load_images(tmp_path / "t-images-idx3-ubyte", 16, 1)
    np.savez(tmp_path / "big.npz", images=np.zeros((3, 8, 8), np.uint8))
    with pytest.raises(DataError, match="'images' is 320 bytes; the limit is 100"):
        load_images(tmp_path / "big.npz", 16, 1, limits=Limits(max_total_bytes=100))
    np.savez(tmp_path / "obj.npz", images=np.array([{"a": 1}], dtype=object))
    with pytest.raises(DataError, match="holds Python objects"):
        load_images(tmp_path / "obj.npz", 16, 1)
    np.savez(tmp_path / "empty.npz", images=np.zeros((0, 8, 8), np.uint8))
    with pytest.raises(DataError, match="the images array is empty"):
        load_images(tmp_path / "empty.npz", 16, 1)
    (tmp_path / "text.npz").write_text("hello")
    with pytest.raises(DataError, match="text.npz is not a valid .npz"):
        load_images(tmp_path / "text.npz", 16, 1)
