"""Tests for gan.metrics: SWD, the FID/KID math, the missing-Inception path. Tiny, CPU-only."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from gan import metrics
from gan.metrics import InceptionUnavailable, evaluate, frechet_distance, kid, swd

# ----------------------------------------------------------------------------------------------
# tiny image sets


def smooth_images(n: int, size: int = 32, channels: int = 3, seed: int = 0) -> torch.Tensor:
    """Blobby images: random 4x4 colour grids upsampled bilinearly -> uint8 (N, C, size, size)."""
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(n, channels, 4, 4, generator=g) * 255
    x = F.interpolate(low, size=(size, size), mode="bilinear", align_corners=False)
    return x.round().clamp(0, 255).to(torch.uint8)


def noise_images(n: int, size: int = 32, channels: int = 3, seed: int = 0) -> torch.Tensor:
    """Per-pixel uniform noise -> uint8 (N, C, size, size)."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, channels, size, size), dtype=torch.uint8, generator=g)


# ----------------------------------------------------------------------------------------------
# SWD


def test_swd_same_distribution_much_smaller_than_different() -> None:
    real = smooth_images(128, seed=1)
    same = smooth_images(128, seed=2)  # disjoint draw from the same distribution
    other = noise_images(128, seed=3)
    small = {"n_patches": 64, "n_dirs": 64}  # a quarter of the default work
    d_same, d_other = swd(real, same, **small), swd(real, other, **small)
    # noise differs most in fine detail; its blurred low-pass level looks more like blobs
    for key, factor in (("swd_32", 4), ("swd_16", 2), ("swd_avg", 3)):
        assert 0 < d_same[key] < d_other[key] / factor, (key, d_same, d_other)


def test_swd_deterministic_for_a_seed_and_keys_match_resolution() -> None:
    real, fake = smooth_images(16, seed=1), noise_images(16, seed=2)
    a, b = swd(real, fake, seed=7, n_patches=32), swd(real, fake, seed=7, n_patches=32)
    assert a == b
    assert swd(real, fake, seed=8, n_patches=32) != a
    assert list(a) == ["swd_32", "swd_16", "swd_avg"]
    assert a["swd_avg"] == pytest.approx((a["swd_32"] + a["swd_16"]) / 2)

    big = smooth_images(4, size=64)
    assert list(swd(big, big, n_patches=8)) == ["swd_64", "swd_32", "swd_16", "swd_avg"]
    assert list(swd(big, big, n_patches=8, min_res=32)) == ["swd_64", "swd_32", "swd_avg"]
    small = smooth_images(4, size=16)
    assert list(swd(small, small, n_patches=8)) == ["swd_16", "swd_avg"]


def test_swd_grayscale_and_unequal_sizes() -> None:
    real = smooth_images(24, channels=1, seed=1)
    fake = noise_images(40, channels=1, seed=2)  # subsampled to 24, deterministically
    a = swd(real, fake, n_patches=16)
    assert a == swd(real, fake, n_patches=16)
    assert all(np.isfinite(v) and v > 0 for v in a.values())
    # constant images (a collapsed generator) give finite numbers, not NaN
    flat = torch.full((24, 1, 32, 32), 7, dtype=torch.uint8)
    assert all(np.isfinite(v) for v in swd(real, flat, n_patches=16).values())


@pytest.mark.parametrize(
    ("real", "fake", "match"),
    [
        (smooth_images(4), smooth_images(4, channels=1), "same channels and size"),
        (smooth_images(4), smooth_images(4, size=16), "same channels and size"),
        (smooth_images(1), smooth_images(4), "at least 2 images"),
        (smooth_images(4).float(), smooth_images(4), "uint8"),
        (smooth_images(4)[0], smooth_images(4)[0], r"\(N, C, H, W\)"),
        (smooth_images(4, size=8), smooth_images(4, size=8), "smaller than min_res"),
        (smooth_images(4)[..., :16], smooth_images(4)[..., :16], "square"),
    ],
)
def test_swd_rejects_bad_input(real: torch.Tensor, fake: torch.Tensor, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        swd(real, fake)


def test_laplacian_pyramid_matches_direct_5x5_filter() -> None:
    """The fast separable/polyphase filters equal the 5x5 binomial conv with mirror borders."""
    k = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0], dtype=torch.float64)
    kernel = (k[:, None] * k[None, :] / 256).view(1, 1, 5, 5)

    def blur(x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        y = F.pad(x.reshape(n * c, 1, h, w), (2, 2, 2, 2), mode="reflect")
        return F.conv2d(y, kernel).reshape(n, c, h, w)

    for size in (16, 17, 32):
        x = torch.rand(2, 3, size, size, dtype=torch.float64)
        down = metrics._pyr_down(x)
        assert (down - blur(x)[:, :, ::2, ::2]).abs().max() < 1e-12
        stuffed = x.new_zeros(2, 3, 2 * down.shape[2], 2 * down.shape[3])
        stuffed[:, :, ::2, ::2] = down
        up = metrics._pyr_up(down, (size, size))
        assert (up - 4 * blur(stuffed)[:, :, :size, :size]).abs().max() < 1e-12

    # a Laplacian pyramid adds back up to the image
    images = smooth_images(3, size=64)
    levels = metrics._laplacian_pyramid(images, [64, 32, 16])
    recon = levels[2]
    for lap in (levels[1], levels[0]):
        recon = lap + metrics._pyr_up(recon, lap.shape[-2:])
    assert (recon - images.float()).abs().max() < 1e-3


# ----------------------------------------------------------------------------------------------
# Fréchet distance and KID


def random_spd(dim: int, seed: int) -> np.ndarray:
    a = np.random.default_rng(seed).normal(size=(dim, dim))
    return a @ a.T / dim + 0.1 * np.eye(dim)


def test_frechet_distance_closed_forms() -> None:
    rng = np.random.default_rng(0)
    mu, sigma = rng.normal(size=8), random_spd(8, seed=1)
    assert abs(frechet_distance(mu, sigma, mu, sigma)) < 1e-8

    shift = rng.normal(size=8)
    assert frechet_distance(mu, sigma, mu + shift, sigma) == pytest.approx(shift @ shift, abs=1e-8)

    s1, s2 = rng.uniform(0.1, 3.0, size=8), rng.uniform(0.1, 3.0, size=8)
    expected = (s1 + s2 - 2 * np.sqrt(s1 * s2)).sum()
    got = frechet_distance(mu, np.diag(s1), mu, np.diag(s2))
    assert got == pytest.approx(expected, rel=1e-9, abs=1e-12)

    # torch tensors in, and also the symmetric case with a shift
    mu_t, sigma_t = torch.from_numpy(mu), torch.from_numpy(np.diag(s1))
    got = frechet_distance(mu_t, sigma_t, torch.zeros(8), torch.eye(8))
    assert got == pytest.approx(mu @ mu + (s1 + 1 - 2 * np.sqrt(s1)).sum(), rel=1e-9)


def test_frechet_distance_rank_deficient_covariance() -> None:
    """Fewer samples than dimensions: singular covariances, round-off negatives stay harmless."""
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(5, 32)), rng.normal(size=(5, 32)) + 1.0
    cx, cy = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    # sqrt of round-off eigenvalues (~1e-16) of the null space adds ~1e-8 each; trace is ~30
    assert abs(frechet_distance(x.mean(0), cx, x.mean(0), cx)) < 1e-5
    d = frechet_distance(x.mean(0), cx, y.mean(0), cy)
    assert np.isfinite(d) and d > 0
    with pytest.raises(ValueError, match="shape"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))


def mmd2_reference(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2 with k(a, b) = (a.b / d + 1)^3, written out term by term."""
    m, d = x.shape

    def k(a: np.ndarray, b: np.ndarray) -> float:
        return (a @ b / d + 1.0) ** 3

    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    return xx + yy - 2 * xy


def test_kid_matches_written_out_estimator_and_separates_distributions() -> None:
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(12, 5)), rng.normal(size=(12, 5)) + 0.5
    mean, std = kid(x, y, subsets=1, subset_size=12)  # one subset = whole sets, permuted
    assert mean == pytest.approx(mmd2_reference(x, y), rel=1e-10)
    assert std == 0.0

    a, b = rng.normal(size=(400, 64)), rng.normal(size=(400, 64))
    shifted = rng.normal(size=(400, 64)) + 0.5
    same_mean, same_std = kid(a, b, subsets=20, subset_size=200)
    diff_mean, diff_std = kid(a, shifted, subsets=20, subset_size=200)
    assert abs(same_mean) < 0.05 * diff_mean
    assert diff_mean > 5 * diff_std
    small = {"subsets": 5, "subset_size": 100}
    assert kid(a, b, **small, seed=3) == kid(a, b, **small, seed=3)
    assert kid(torch.from_numpy(a), torch.from_numpy(b), **small) == kid(a, b, **small)
    with pytest.raises(ValueError, match="subset_size"):
        kid(a[:50], b, subset_size=100)


# ----------------------------------------------------------------------------------------------
# Inception weights missing


def test_inception_unavailable_names_the_path(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    missing = tmp_path / "nope" / "inception.pth"
    with pytest.raises(InceptionUnavailable) as info:
        metrics.fid_kid(smooth_images(4), smooth_images(4), inception_weights=missing)
    message = str(info.value)
    assert str(missing) in message
    assert metrics.INCEPTION_WEIGHTS_FILE in message and "GAN_INCEPTION_WEIGHTS" in message

    monkeypatch.setenv("GAN_INCEPTION_WEIGHTS", str(missing))
    with pytest.raises(InceptionUnavailable, match="GAN_INCEPTION_WEIGHTS"):
        metrics.find_inception_weights()

    monkeypatch.delenv("GAN_INCEPTION_WEIGHTS")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    default = tmp_path / "torch" / "hub" / "checkpoints" / metrics.INCEPTION_WEIGHTS_FILE
    assert metrics.default_inception_weights_path() == default
    with pytest.raises(InceptionUnavailable, match="default cache path"):
        metrics.find_inception_weights()
    default.parent.mkdir(parents=True)
    default.write_bytes(b"")
    assert metrics.find_inception_weights() == default


def test_evaluate_without_weights_gives_swd_and_a_note(tmp_path) -> None:
    real, fake = smooth_images(8, seed=1), noise_images(8, seed=2)
    out = evaluate(real, fake, inception_weights=tmp_path / "missing.pth")
    assert {"swd_32", "swd_16", "swd_avg"} <= set(out)
    assert "fid" not in out and "kid_mean" not in out
    assert "FID/KID skipped" in out["note"] and "missing.pth" in out["note"]
    assert out["swd_avg"] == swd(real, fake)["swd_avg"]


class StubInception(torch.nn.Module):
    """Stands in for torch-fidelity's network: uint8 (B, 3, H, W) -> (features,), 6-d."""

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor]:
        assert x.dtype == torch.uint8 and x.shape[1] == 3
        x = x.float() / 255  # Inception pool3 features are O(1) too
        return (torch.cat([x.mean((2, 3)), x.std((2, 3))], 1),)


def test_evaluate_with_weights_reports_fid_kid(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    weights = tmp_path / metrics.INCEPTION_WEIGHTS_FILE
    weights.write_bytes(b"")
    loaded = []

    def load_stub(path, device) -> StubInception:
        loaded.append(path)
        return StubInception()

    monkeypatch.setattr(metrics, "_load_inception", load_stub)
    real, fake = smooth_images(20, channels=1, seed=1), noise_images(20, channels=1, seed=2)
    out = evaluate(real, fake, inception_weights=weights)
    assert loaded == [weights]  # one network for both sets
    assert "note" not in out and {"swd_avg", "fid", "kid_mean", "kid_std"} <= set(out)
    assert out["fid"] > 0.01 and out["kid_mean"] > 0.005
    assert abs(metrics.fid_kid(real, real, inception_weights=weights)["fid"]) < 1e-8
    same = metrics.fid_kid(real, smooth_images(20, channels=1, seed=5), inception_weights=weights)
    assert same["fid"] < out["fid"] / 5 and abs(same["kid_mean"]) < out["kid_mean"] / 20


def test_torch_fidelity_inception_features(tmp_path) -> None:
    """With torch-fidelity installed: random weights saved to a file load and run (2048-d)."""
    tf = pytest.importorskip("torch_fidelity.feature_extractor_inceptionv3")
    cls = tf.FeatureExtractorInceptionV3
    # build the network without its weights (they cannot be downloaded here) and save them
    load_method, load_url = cls.load_state_dict, tf.load_state_dict_from_url
    try:
        cls.load_state_dict = lambda self, state_dict: None  # type: ignore[method-assign]
        tf.load_state_dict_from_url = lambda *args, **kwargs: {}
        net = cls("inception-v3-compat", ["2048"])
    finally:
        cls.load_state_dict = load_method  # type: ignore[method-assign]
        tf.load_state_dict_from_url = load_url
    weights = tmp_path / metrics.INCEPTION_WEIGHTS_FILE
    torch.save(net.state_dict(), weights)

    feats = metrics.inception_features(smooth_images(2, channels=1), inception_weights=weights)
    assert feats.shape == (2, 2048) and feats.dtype == torch.float64
    assert torch.isfinite(feats).all()

    weights.write_text("not a state dict")
    with pytest.raises(InceptionUnavailable, match="not a usable"):
        metrics.inception_features(smooth_images(2), inception_weights=weights)
