"""One image file's bytes -> uint8 (C, S, S): the header first (format, size, the pixel limits),
then the pixels; EXIF orientation, mode conversion, centre crop and Lanczos resize."""

from __future__ import annotations

import functools
import io

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .budget import DataError, PixelBudget


def _to_mode(img: Image.Image, channels: int) -> Image.Image:
    """Any PIL mode -> 'L' or 'RGB'. Alpha is composited on white; 16-bit is scaled to 8-bit."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        a = np.asarray(img, dtype=np.float64)
        hi = 65535.0 if img.mode.startswith("I;16") or a.max() > 255 else 255.0
        img = Image.fromarray(np.clip(a / hi * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")
    if img.mode == "P" or img.mode == "PA":
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "La", "RGBa"):
        img = img.convert("RGBA")
        bg = Image.new("RGBA", img.size, (255, 255, 255, 255))
        img = Image.alpha_composite(bg, img)
    return img.convert("RGB" if channels == 3 else "L")


# Formats decoded: the common photo/web formats, all pure-Python/C decoders in Pillow. Anything else
# (EPS, which would run Ghostscript; PSD; ICNS; ...) is "not an image", whatever its name.
IMAGE_FORMATS = ("PNG", "JPEG", "MPO", "GIF", "BMP", "WEBP", "TIFF", "PPM")


@functools.cache
def _open_formats() -> tuple[str, ...]:
    Image.init()  # registers every plugin once (Pillow does this itself on a first unknown format)
    return tuple(f for f in IMAGE_FORMATS if f in Image.OPEN)


def decode_image(
    data: bytes, size: int, channels: int, max_pixels: int, pixels: PixelBudget | None = None
) -> tuple[np.ndarray | None, str | None, bool]:
    """bytes -> (uint8 (C, S, S) array, None, animated) or (None, skip reason, False).

    Thread-safe: no process-wide Pillow setting is read for limits or changed. The pixel limit is
    checked from the header before any pixel is decoded, and a truncated file fails `load()`
    (Pillow's default; this module never sets LOAD_TRUNCATED_IMAGES). The pixels to be decoded
    (a JPEG's at its reduced decoding scale) are charged to `pixels` first: over that budget a
    DataError is raised, refusing the whole source. EXIF orientation is applied, then the image is
    centre-cropped to a square and resized (ImageOps.fit, Lanczos).
    """
    if len(data) == 0:
        return None, "empty file (0 bytes)", False
    too_large = f"image too large (over {max_pixels:,} pixels; decompression bomb guard)"
    try:
        img = Image.open(io.BytesIO(data), formats=_open_formats())  # reads the header only
    except Image.DecompressionBombError:  # over twice Pillow's own limit: refused by Pillow itself
        return None, too_large, False
    except UnidentifiedImageError:
        return None, "not an image", False
    except Exception:  # a header that a plugin chokes on (struct.error, SyntaxError, ...)
        return None, "truncated or corrupt image", False
    try:
        with img:
            w, h = img.size
            if w <= 0 or h <= 0:
                return None, "truncated or corrupt image", False
            if w * h > max_pixels:
                return None, too_large, False
            animated = getattr(img, "n_frames", 1) > 1  # the first frame is used
            if img.format in ("JPEG", "MPO"):
                # decode at a reduced scale (DCT scaling) when the image is much larger than needed
                img.draft("RGB" if channels == 3 else "L", (size * 2, size * 2))
            if pixels is not None:
                pixels.spend(*img.size)  # the decode budget, from the header (after draft)
            img.load()  # raises OSError on a truncated file
            a = fit_image(img, size, channels)
    except (DataError, MemoryError):  # over the decode budget, or a memory cap: the whole source ends
        raise
    except Exception:  # decoders raise OSError, SyntaxError, ValueError, struct.error, EOFError, ...
        return None, "truncated or corrupt image", False
    return a, None, animated


def fit_image(img: Image.Image, size: int, channels: int) -> np.ndarray:
    """A decoded PIL image -> uint8 (C, size, size): EXIF orientation applied (phone photos), mode
    converted, centre-cropped to a square and resized with Lanczos (ImageOps.fit)."""
    img = ImageOps.exif_transpose(img)  # the camera's rotation, applied; a copy when there is none
    img = ImageOps.fit(_to_mode(img, channels), (size, size), Image.Resampling.LANCZOS)
    a = np.asarray(img, dtype=np.uint8)
    a = a[None] if a.ndim == 2 else a.transpose(2, 0, 1)  # (S, S[, C]) -> (C, S, S)
    return np.array(a, order="C")  # a writable copy of PIL's read-only buffer


# ---------------------------------------------------------------------------------------------
