"""The model card (README.md of a model folder), defined once.

`CARD_METADATA` is the Hub metadata every GAN Lab model carries; `Generator` passes it to
huggingface_hub's `PyTorchModelHubMixin` (so the mixin's own `save_pretrained` / `push_to_hub`
write it), and `model_card` writes the same fields into the YAML front matter of the card that
`save_model` and `gan.push_to_hub` write. Only `config` is imported: the card is text.
"""

from __future__ import annotations

from typing import Any

from .config import ModelConfig, TrainConfig

CARD_TAGS = ("gan", "dcgan", "pytorch", "unconditional-image-generation", "gan-lab")
CARD_METADATA: dict[str, Any] = {
    "library_name": "gan-lab",
    "license": "mit",
    "pipeline_tag": "unconditional-image-generation",
}


def usage(name: str) -> list[str]:
    """The "Use" section: how to load `name` (a repo id or a folder) and sample from it."""
    return [
        "## Use",
        "",
        "```python",
        "from gan import load_model, sample",
        f'G = load_model("{name}")  # or: Generator.from_pretrained("{name}")',
        "images = sample(G, seeds=[0, 1, 2, 3])  # uint8 (4, C, H, W); one seed, one image",
        "```",
        "",
        f"Or from the command line: `python -m gan sample --model {name} --seed 0 --n 16 --out grid.png`.",
        "",
    ]


def model_card(
    cfg: ModelConfig,
    *,
    train_cfg: TrainConfig | None = None,
    data_source: str | None = None,
    steps: int | None = None,
    metrics: dict[str, Any] | None = None,
    datasets: list[str] | None = None,
    extra: str = "",
    repo_id: str | None = None,
    samples: bool = True,
) -> str:
    """The README.md of a model folder: Hub metadata, how to use it, training, metrics."""
    meta = ["---", *[f"{k}: {v}" for k, v in CARD_METADATA.items()], "tags:", *[f"- {t}" for t in CARD_TAGS]]
    if datasets:
        meta += ["datasets:", *[f"- {d}" for d in datasets]]
    meta.append("---")
    body = [
        "",
        f"# DCGAN {cfg.image_size}x{cfg.image_size} ({'RGB' if cfg.channels == 3 else 'grayscale'})",
        "",
        "A DCGAN generator trained with GAN Lab "
        f"({cfg.g_style} generator{' with skip-layer excitation' if cfg.g_sle else ''}, "
        f"widths G {cfg.g_width} / D {cfg.d_width}, z {cfg.z_dim}).",
        "",
        *(["![samples](samples.png)", ""] if samples else []),
        *usage(repo_id or "path/to/model"),
        "## Training",
        "",
    ]
    if data_source:
        body += [f"- data: {data_source}"]
    if steps is not None:
        body += [f"- steps: {steps}"]
    if train_cfg is not None:
        t = train_cfg
        cool = ""
        if t.cooldown:
            of = "the steps or of the time limit, whichever came first" if t.max_minutes else "the steps"
            cool = f" (x{t.cooldown_lr:g} over the last {t.cooldown:.0%} of {of})"
        r1 = f", R1 gamma {t.r1_gamma:g} every {t.r1_every} steps" if t.r1_gamma else ""
        body += [
            f"- batch {t.batch_size}, loss {t.loss}{r1}, lr G {t.lr_g:g} / D {t.lr_d:g}{cool}, "
            f"Adam betas ({t.beta1}, {t.beta2}), EMA {t.ema_decay:g}, augment {t.augment}"
            f"{', x-flips' if t.xflip else ''}, precision {t.precision}, seed {t.seed}",
        ]
    body += ["", "Model config:", "", "```json", cfg.to_json(), "```", ""]
    if metrics:
        body += ["## Metrics", "", "| metric | value |", "|---|---|"]
        body += [f"| {k} | {v:.4g} |" if isinstance(v, float) else f"| {k} | {v} |" for k, v in metrics.items()]
        body += [""]
    if extra:
        body += [extra.strip(), ""]
    if "limits" not in extra.lower():
        body += [
            "## Limits",
            "",
            "A small DCGAN: it reproduces the look of its training images at low resolution and "
            "can show artifacts; it knows nothing beyond its training data.",
            "",
        ]
    return "\n".join(meta + body)
