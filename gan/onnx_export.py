"""A generator as ONNX, for the visitor's browser (onnxruntime-web) and other tools.

    exp = export_onnx(G)                      # cached by the weights' hash, checked against PyTorch
    exp.path, exp.manifest["max_abs_diff"]    # ~/.cache/gan-lab/onnx/<hash>-gan-lab-onnx-1.onnx, e.g. 2e-7
    write_onnx_into(G, "stage/")              # stage/model.onnx, for a Hub push
    payload = interpolate_payload(G, 3, 7)    # the few latents the browser needs, base64 float32

The graph is the generator in eval mode with every BatchNorm folded into the convolution before it
(so no BatchNormalization node is left), a dynamic batch axis, input `z` (B, z_dim) float32 and
output `image` (B, C, S, S) in [-1, 1]. It is written by torch's own TorchScript-based exporter
(`dynamo=False`; deprecated since torch 2.9 but shipped, with a DeprecationWarning): it needs no
extra package (the dynamo exporter needs onnxscript), exports these small convolution stacks in
about a second, and is what the Space runs when a model trained in the app is first opened in the
browser. Should a future torch drop it, the export raises OnnxExportError and pages use the server.
Each export is run once through onnxruntime on random z and compared with PyTorch before it is
cached; a difference above `TOLERANCE` is an error.

Latents cross to the browser as base64 little-endian float32 (exact: no decimal round trip),
because torch's seeded `randn` cannot be reproduced in JavaScript. The browser side
(gan/ui/static/browser_gen.js) recomputes slerp/lerp, direction edits and the seed-plane blend
with the formulas of gan.sampling and gan.latent.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import inspect
import io
import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .fileio import atomic_write_bytes, atomic_write_json, cache_dir
from .latent import Directions, weights_hash
from .models import run_generator
from .sampling import latents

ONNX_FORMAT = "gan-lab-onnx/1"  # bump when the graph's layout, names or opset change: old cache entries are ignored
OPSET = 17  # onnxruntime-web 1.17+ runs it; the exporter's well-trodden opset
TOLERANCE = 1e-3  # max |onnx - torch| on outputs in [-1, 1]
ONNX_FILE = "model.onnx"  # its name in a model folder / Hub repo
INPUT_NAME, OUTPUT_NAME = "z", "image"
_CONVS = (nn.Conv2d, nn.ConvTranspose2d)
_EXPORT_LOCK = threading.Lock()


class OnnxExportError(RuntimeError):
    """The generator cannot be exported, or the export does not match PyTorch; the browser falls back."""


# ---------------------------------------------------------------------------------------------
# folding and export


def _fold(conv: nn.Conv2d | nn.ConvTranspose2d, bn: nn.BatchNorm2d) -> nn.Module:
    """conv followed by eval-mode bn -> one conv with a bias: bn(conv(x)) = conv'(x)."""
    if bn.running_mean is None or bn.running_var is None:
        raise OnnxExportError("a BatchNorm without running statistics cannot be folded")
    scale = bn.weight.detach().double() / torch.sqrt(bn.running_var.double() + bn.eps)  # (C_out,)
    shift = bn.bias.detach().double() - bn.running_mean.double() * scale  # (C_out,)
    out = copy.deepcopy(conv).float()
    w = conv.weight.detach().double()
    if isinstance(conv, nn.ConvTranspose2d):  # weight (C_in, C_out / groups, k, k)
        if conv.groups != 1:
            raise OnnxExportError("folding a grouped ConvTranspose2d is not supported")
        w = w * scale[None, :, None, None]
    else:  # Conv2d weight (C_out, C_in / groups, k, k)
        w = w * scale[:, None, None, None]
    b = shift if conv.bias is None else conv.bias.detach().double() * scale + shift
    out.weight = nn.Parameter(w.float())
    out.bias = nn.Parameter(b.float())
    return out


class _Exportable(nn.Module):
    """z (B, z_dim) -> image (B, C, S, S): the generator's layers with BatchNorm folded in."""

    def __init__(self, G: nn.Module):
        super().__init__()
        layers: list[nn.Module] = []
        for m in G.net:
            if isinstance(m, nn.BatchNorm2d):
                if not layers or not isinstance(layers[-1], _CONVS):
                    raise OnnxExportError("a BatchNorm that does not follow a convolution cannot be folded")
                layers[-1] = _fold(layers[-1], m)
            else:
                layers.append(copy.deepcopy(m).float())
        self.net = nn.Sequential(*layers).eval()
        self.sle = copy.deepcopy(G.sle).float().eval()  # skip-layer excitation (empty if off)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return run_generator(self.net, self.sle, z)  # (B, z) -> (B, C, S, S)


def _generator(G: nn.Module) -> nn.Module:
    G = getattr(G, "_orig_mod", G)  # a torch.compile'd G exports as its module
    if not isinstance(getattr(G, "net", None), nn.Sequential) or not hasattr(G, "config"):
        raise OnnxExportError(f"export a GAN Lab Generator, not a {type(G).__name__}")
    return G


def export_bytes(G: nn.Module, *, opset: int = OPSET) -> bytes:
    """G (not modified) -> the ONNX file's bytes: BatchNorm folded, eval mode, float32, dynamic batch."""
    G = _generator(G)
    with torch.no_grad():
        model = _Exportable(G).cpu()  # copies of G's layers: G itself keeps its device and mode
    z = torch.zeros(1, G.config.z_dim)
    buf = io.BytesIO()
    # torch >= 2.9 defaults to the dynamo exporter (it needs onnxscript); older ones lack the argument
    legacy = {"dynamo": False} if "dynamo" in inspect.signature(torch.onnx.export).parameters else {}
    try:
        with _EXPORT_LOCK:  # the exporter keeps global state: one export at a time
            torch.onnx.export(
                model, (z,), buf, opset_version=opset, do_constant_folding=True,
                input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}}, **legacy,
            )  # fmt: skip
    except Exception as e:  # an exporter that changed under a newer torch, or an unsupported layer
        raise OnnxExportError(f"torch.onnx.export failed ({type(e).__name__}: {str(e).splitlines()[0]})") from None
    return buf.getvalue()


def check_against_torch(onnx_bytes: bytes, G: nn.Module, *, n: int = 4, seed: int = 0) -> float:
    """Run the ONNX model with onnxruntime on n random z (and on one, as batch 1) and return the
    max abs difference from PyTorch's eval-mode output. Raises OnnxExportError above TOLERANCE."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise OnnxExportError("checking an ONNX export needs onnxruntime: pip install onnxruntime") from None
    G = _generator(G)
    z = torch.randn(n, G.config.z_dim, generator=torch.Generator().manual_seed(seed))  # (n, z_dim)
    was_training = G.training
    G.eval()
    try:
        with torch.no_grad():
            ref = G(z.to(next(G.parameters()).device)).float().cpu().numpy()  # (n, C, S, S)
    finally:
        G.train(was_training)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1  # a check, not a benchmark: leave the cores to training
    opts.log_severity_level = 3
    sess = ort.InferenceSession(onnx_bytes, opts, providers=["CPUExecutionProvider"])
    zn = z.numpy()
    out = sess.run([OUTPUT_NAME], {INPUT_NAME: zn})[0]
    one = sess.run([OUTPUT_NAME], {INPUT_NAME: zn[:1]})[0]
    if out.shape != ref.shape or one.shape != ref[:1].shape:
        raise OnnxExportError(f"ONNX output shape {out.shape} differs from PyTorch's {ref.shape}")
    diff = float(max(np.abs(out - ref).max(), np.abs(one - ref[:1]).max()))
    if not diff < TOLERANCE:
        raise OnnxExportError(f"the ONNX export differs from PyTorch by {diff:.2e} (limit {TOLERANCE:.0e})")
    return diff


# ---------------------------------------------------------------------------------------------
# the cached export and its manifest


@dataclass(frozen=True)
class OnnxExport:
    path: Path  # the .onnx file in the cache
    manifest: dict[str, Any]  # what the browser needs to run it; see `manifest_for`

    @property
    def max_abs_diff(self) -> float:
        return float(self.manifest["max_abs_diff"])

    def read_bytes(self) -> bytes:
        return self.path.read_bytes()


def manifest_for(G: nn.Module, onnx_bytes: bytes, max_abs_diff: float, *, opset: int = OPSET) -> dict[str, Any]:
    """The small JSON the page gets with the model: shapes, value range, provenance, the file's hash."""
    import onnxruntime as ort

    cfg = _generator(G).config
    return {
        "format": ONNX_FORMAT,
        "input": INPUT_NAME,  # float32 (batch, z_dim)
        "output": OUTPUT_NAME,  # float32 (batch, channels, image_size, image_size), NCHW
        "z_dim": cfg.z_dim,
        "image_size": cfg.image_size,
        "channels": cfg.channels,
        "output_range": [-1.0, 1.0],  # pixel = floor((clamp(x, -1, 1) + 1) * 127.5 + 0.5), as gan.data.to_uint8
        "batch": "dynamic",
        "opset": opset,
        "weights": weights_hash(G),
        "sha256": hashlib.sha256(onnx_bytes).hexdigest(),
        "bytes": len(onnx_bytes),
        "max_abs_diff": max_abs_diff,
        "checked_with": f"onnxruntime {ort.__version__}",
        "exporter": f"torch.onnx TorchScript exporter, torch {torch.__version__.split('+')[0]}",
    }


def cache_paths(G: nn.Module) -> tuple[Path, Path]:
    """(model .onnx, manifest .json) in cache_dir("onnx"), named by the weights' hash and the format."""
    stem = f"{weights_hash(_generator(G))}-{ONNX_FORMAT.replace('/', '-')}"
    d = cache_dir("onnx")
    return d / f"{stem}.onnx", d / f"{stem}.json"


def _read_cached(onnx_path: Path, json_path: Path, G: nn.Module) -> OnnxExport | None:
    try:
        manifest = json.loads(json_path.read_text())
        data = onnx_path.read_bytes()
    except (OSError, ValueError):
        return None
    ok = (
        isinstance(manifest, dict)
        and manifest.get("format") == ONNX_FORMAT
        and manifest.get("sha256") == hashlib.sha256(data).hexdigest()
        and manifest.get("z_dim") == G.config.z_dim
    )
    return OnnxExport(onnx_path, manifest) if ok else None


def export_onnx(G: nn.Module, *, use_cache: bool = True) -> OnnxExport:
    """The generator's checked ONNX export, from the cache when it holds one for these exact weights.

    The .onnx is written before its manifest (each atomically), and a cache entry counts only when
    the manifest's sha256 matches the file, so a crash or a concurrent export never serves half a file.
    Nothing is written beside the model's own files (weights/, the Hub cache).
    """
    G = _generator(G)
    onnx_path, json_path = cache_paths(G)
    if use_cache:
        cached = _read_cached(onnx_path, json_path, G)
        if cached is not None:
            return cached
    data = export_bytes(G)
    diff = check_against_torch(data, G)
    manifest = manifest_for(G, data, diff)
    atomic_write_bytes(onnx_path, data)
    atomic_write_json(json_path, manifest)
    return OnnxExport(onnx_path, manifest)


def write_onnx_into(G: nn.Module, folder: str | Path) -> Path:
    """`folder/model.onnx` from the (cached, checked) export; for a Hub push's staging folder."""
    exp = export_onnx(G)
    return atomic_write_bytes(Path(folder) / ONNX_FILE, exp.read_bytes())


def export_onnx_file(G: nn.Module, out: str | Path) -> str:
    """`python -m gan export --onnx OUT`: write the export to `out`; returns a one-line report."""
    out = Path(out)
    if out.suffix.lower() != ".onnx":
        raise ValueError(f"the ONNX output must end in .onnx, got {out.name}")
    if out.is_dir():
        raise ValueError(f"{out} is a folder; give a file name ending in .onnx")
    exp = export_onnx(G)
    atomic_write_bytes(out, exp.read_bytes())
    m = exp.manifest
    return (
        f"wrote {out} ({m['bytes'] / 1e6:.1f} MB, opset {m['opset']}, z {m['z_dim']} -> "
        f"{m['channels']}x{m['image_size']}x{m['image_size']} in [-1, 1], dynamic batch); "
        f"max |onnxruntime - torch| = {m['max_abs_diff']:.1e}"
    )


# ---------------------------------------------------------------------------------------------
# the latents the browser needs (it cannot reproduce torch's seeded randn)


def encode_f32(t: torch.Tensor) -> str:
    """A float tensor -> base64 of its little-endian float32 bytes (row-major)."""
    a = np.ascontiguousarray(t.detach().cpu().float().numpy(), dtype="<f4")
    return base64.b64encode(a.tobytes()).decode("ascii")


def decode_f32(s: str, shape: Sequence[int] | None = None) -> torch.Tensor:
    """The inverse of encode_f32."""
    a = np.frombuffer(base64.b64decode(s), dtype="<f4").copy()
    t = torch.from_numpy(a)
    return t.reshape(*shape) if shape is not None else t


def _directions(directions: Directions) -> dict[str, Any]:
    return {"k": len(directions), "vectors": encode_f32(directions.vectors), "std": encode_f32(directions.std)}


def interpolate_payload(
    G: nn.Module,
    seed_a: int,
    seed_b: int,
    *,
    mode: str = "slerp",
    truncation: float = 1.0,
    directions: Directions | None = None,
) -> dict[str, Any]:
    """For the t slider: z(t) = interpolate(z_a, z_b, t, mode), as gan.sampling.interpolate; with
    `directions`, then moved by the slider amounts as gan.latent.edit (fewer amounts than directions
    count the rest as 0, as the app's direction sliders do)."""
    if mode not in ("slerp", "lerp"):
        raise ValueError(f"mode must be 'slerp' or 'lerp', got {mode!r}")
    za, zb = latents([seed_a, seed_b], G.z_dim, truncation)  # (2, z_dim)
    p = {"kind": "interpolate", "z_dim": G.z_dim, "mode": mode, "seeds": [int(seed_a), int(seed_b)],
         "truncation": float(truncation), "z_a": encode_f32(za), "z_b": encode_f32(zb)}  # fmt: skip
    return p | (_directions(directions) if directions is not None else {})


def explore_payload(
    G: nn.Module, seed: int, directions: Directions, *, truncation: float = 1.0, z: torch.Tensor | None = None
) -> dict[str, Any]:
    """For direction sliders: z = base + sum_i amount_i * std_i * vector_i, as gan.latent.edit
    (vectors (k, z_dim) row-major; fewer amounts than k count the rest as 0).

    The base is the seed's latent, or `z` (z_dim,) when given (an inverted photo, an arithmetic result)."""
    base = latents([seed], G.z_dim, truncation)[0] if z is None else z.detach().float().cpu().reshape(G.z_dim)
    return {"kind": "explore", "z_dim": G.z_dim, "seed": int(seed), "truncation": float(truncation),
            "z": encode_f32(base), **_directions(directions)}  # fmt: skip


def plane_payload(
    G: nn.Module, seeds4: Sequence[int], *, mode: str = "slerp", truncation: float = 1.0
) -> dict[str, Any]:
    """For the seed plane: corners (top-left, top-right, bottom-left, bottom-right), as gan.latent.blend_corners."""
    if len(seeds4) != 4:
        raise ValueError(f"give 4 corner seeds (top-left, top-right, bottom-left, bottom-right), got {len(seeds4)}")
    if mode not in ("slerp", "bilinear"):
        raise ValueError(f"mode must be 'slerp' or 'bilinear', got {mode!r}")
    corners = latents(list(seeds4), G.z_dim, truncation)  # (4, z_dim)
    return {"kind": "plane", "z_dim": G.z_dim, "mode": mode, "seeds": [int(s) for s in seeds4],
            "truncation": float(truncation), "corners": encode_f32(corners)}  # fmt: skip
