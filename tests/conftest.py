"""Shared fixtures: tiny configs and tiny images made here (the tests never need real data sets)."""

from __future__ import annotations

import io
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from gan import ModelConfig, TrainConfig  # noqa: E402

torch.set_num_threads(1)  # tiny models: one thread is as fast, and parallel jobs do not oversubscribe


def pytest_configure(config) -> None:
    """The in-browser generator's tests need onnxruntime-web from npm (package-lock.json pins it): where
    npm exists and node_modules lacks it, install it once (`npm ci`, a few seconds), so that the README's
    one test command runs those tests too. Without npm they skip, and the summary says why (-rs)."""
    import shutil
    import subprocess

    root = Path(__file__).resolve().parents[1]
    if (root / "node_modules" / "onnxruntime-web").is_dir() or not (root / "package-lock.json").is_file():
        return
    npm = shutil.which("npm")
    if npm is None:
        return
    try:
        subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=root, timeout=300, check=True,
                       stdout=subprocess.DEVNULL)  # fmt: skip
    except (OSError, subprocess.SubprocessError) as e:
        print(f"note: npm ci failed ({e}); the in-browser generator's tests will say why they skip")


TINY = ModelConfig(image_size=16, channels=3, z_dim=16, g_width=8, d_width=8)


def tiny_train(**kw) -> TrainConfig:
    # one thread: fit sets its count explicitly (0 would mean every core) and tiny models gain nothing
    base = dict(steps=6, batch_size=16, log_every=1, sample_every=0, checkpoint_every=0, n_sample=4, threads=1)
    base.update(kw)
    return TrainConfig(**base)


def png_bytes(mode: str = "RGB", size=(20, 14), color=(200, 30, 40), fmt: str = "PNG", **save) -> bytes:
    im = Image.new(mode, size, color)
    buf = io.BytesIO()
    im.save(buf, format=fmt, **save)
    return buf.getvalue()


def png_zip(path: Path, names, size=(20, 20), extra: dict[str, bytes] | None = None) -> Path:
    """A zip of small PNGs, one colour each, under `names` (plus `extra` entries as they are)."""
    import zipfile

    with zipfile.ZipFile(path, "w") as zf:
        for i, name in enumerate(names):
            zf.writestr(name, png_bytes(size=size, color=(30 * i % 256, 90, 200 - 20 * i % 200)))
        for name, data in (extra or {}).items():
            zf.writestr(name, data)
    return path


@pytest.fixture
def tiny_cfg() -> ModelConfig:
    return TINY


@pytest.fixture
def image_folder(tmp_path):
    """A folder of assorted small images in nested subfolders (no class layout)."""
    root = tmp_path / "imgs"
    (root / "a" / "b").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(6):
        arr = rng.integers(0, 255, (24, 30, 3), dtype=np.uint8)
        Image.fromarray(arr).save(root / ("a" if i % 2 else "a/b") / f"im{i}.png")
    return root


CHROMIUM = "/usr/bin/chromium"  # Debian's Chromium (never `playwright install`)
CHROMIUM_ARGS = [
    "--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip
ON_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium for the browser tests. CI installs Chromium and playwright (.ci/run): there a
    missing one fails the tests; elsewhere it skips them."""
    if ON_CI:
        import playwright.sync_api as sync_api

        if not Path(CHROMIUM).exists():
            raise RuntimeError(f"{CHROMIUM} is missing on CI: the browser tests cannot run (apt-get install chromium)")
    else:
        sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright pip package is not installed")
        if not Path(CHROMIUM).exists():
            pytest.skip(f"{CHROMIUM} is missing: apt-get install chromium to run the browser tests")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()
