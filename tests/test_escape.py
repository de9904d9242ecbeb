"""What a visitor names (files in an uploaded zip, the zip itself, a typed model or repo id, an error
that echoes them) shows as literal text wherever the app renders Markdown for every watcher.

The Markdown is rendered with markdown-it-py (CommonMark with raw HTML on, plus GFM tables and
strikethrough; Gradio depends on it), then the HTML is checked: no <img>, <a>, emphasis, code,
heading, table or strikethrough element comes from a name, and the name's own text is there. GFM's
bare-URL autolinks and Gradio's $$ math are checked on the Markdown source (markdown-it-py has no
linkify without an extra package): no http://, www., e-mail or $$ is left unescaped.
"""

from __future__ import annotations

import html
import json
import re
import zipfile
from types import SimpleNamespace

import pytest

markdown_it = pytest.importorskip("markdown_it", reason="markdown-it-py (a gradio dependency) is not installed")

import gan  # noqa: E402
from gan.ui.common import AppError, Scratch, md_text  # noqa: E402
from gan.ui.jobs import Job  # noqa: E402
from gan.ui.models import Models  # noqa: E402
from gan.ui.train_live import data_markdown  # noqa: E402
from gan.ui.train_view import report_markdown, run_label, status_line  # noqa: E402

from conftest import png_bytes  # noqa: E402

HOSTILE = [
    "<img src=x onerror=alert(1)>.png",
    "**bold**.png",
    "[link](http://evil).png",
    "_under_ *star* `tick` ~~gone~~.png",
    "# heading.png",
    "| a | b |.png",
    "![pic](http://evil/p.png).png",
    "see www.evil.com or mail a@evil.com.png",
    "$$\\frac{1}{2}$$.png",
    "quote \" and ' & &lt;b&gt;.png",
    "back\\slash \\*x\\*.png",
    "two\nlines\r\n- item.png",
]
ZIP_NAME = "boom [click](javascript:alert(1)) **big** <img src=x>.zip"  # a file name: no "/"
MD = markdown_it.MarkdownIt("commonmark").enable(["table", "strikethrough"])
FORBIDDEN = re.compile(r"<(img|a|h[1-6]|del|s|table|pre|blockquote|ol|script|i|b|br|hr)[\s>/]", re.I)


def render(md: str) -> str:
    return MD.render(md)


def text_of(rendered: str) -> str:
    """The rendered HTML's visible text, whitespace collapsed."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", rendered)).split())


def shown(name: str) -> str:
    return " ".join(name.split())  # md_text turns line breaks into one space


def assert_literal(md: str, names: list[str], **allowed: str) -> str:
    """`md` renders with each of `names` as text, no new block, and no element but those the app's
    own text makes: `allowed` maps a tag (strong, em) to the pattern its contents must match; code
    may only hold a plain run name (run_label)."""
    out = render(md)
    bad = FORBIDDEN.findall(out)
    assert not bad, f"markup from a name: {bad}\n{md}\n{out}"
    items = len(re.findall(r"^- ", md, re.M))
    assert out.count("<li>") == items and out.count("<p>") + items <= md.count("\n") + 2, f"new blocks:\n{out}"
    for tag, want in {"strong": None, "em": None, "code": r"[\w.-]+", **allowed}.items():
        for inner in re.findall(rf"<{tag}>(.*?)</{tag}>", out, re.S):
            assert want and re.fullmatch(want, inner), f"<{tag}> from a name: {inner!r}\n{md}\n{out}"
    assert not re.search(r"(?<!\\)(https?:|www\.|\$\$|@)", md), f"an autolink or $$ math could start: {md}"
    text = text_of(out)
    for name in names:
        assert shown(name) in text, f"{name!r} is not shown as it is in {text!r}"
    return out


@pytest.mark.parametrize("name", HOSTILE + [ZIP_NAME])
def test_md_text_shows_any_name_literally(name):
    assert_literal(md_text(name), [name])
    assert_literal(f"- **Data** from {md_text(name)}: more", [name], strong="Data")  # in a line, in a list


def test_md_text_neutralises_blocks_and_controls():
    assert md_text("a\nb\r\nc\u2028d\x00e\tf") == "a b c d e f"
    assert "\u202e" not in md_text("cat\u202egnp.exe")  # a right-to-left override cannot disguise a name
    assert md_text(None) == "" and md_text(123) == "123"
    assert md_text("plain name 123") == "plain name 123"  # nothing to escape: unchanged


@pytest.fixture
def hostile_zip(tmp_path):
    """A zip named like a link, with two real images and files named like markup (not images: skipped)."""
    z = tmp_path / ZIP_NAME
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("ok1.png", png_bytes())
        zf.writestr("ok2.png", png_bytes(color=(10, 200, 30)))
        for i, name in enumerate(HOSTILE[:3]):
            zf.writestr(name, b"not an image %d" % i)
    return z


def test_data_report_shows_file_and_zip_names_literally(hostile_zip):
    data = gan.data.load_images(hostile_zip, 16, 3)
    assert data.report.n_ok == 2 and data.report.n_skipped == 3
    md = report_markdown(data)
    assert_literal(md, [ZIP_NAME, *HOSTILE[:3]], strong=r"[\d,]+ (images|files skipped)")
    assert "<li>" in render(md)  # the report's own list still renders as a list

    # the Train tab's data box of a running job (every watcher sees it), with a plain and a strange run name
    job = SimpleNamespace(name="20250101-120000-boom-click-16px", data=data)
    out = assert_literal(data_markdown(job), [ZIP_NAME], strong=r"[\d,]+ (images|files skipped)")
    assert "<code>20250101-120000-boom-click-16px</code>" in out
    job.name = "run [x](http://evil)"
    assert_literal(data_markdown(job), [job.name, ZIP_NAME], strong=r"[\d,]+ (images|files skipped)")
    assert run_label("a-b_c.1") == "`a-b_c.1`" and run_label("a`b") == md_text("a`b")


def test_status_line_shows_messages_literally(hostile_zip, tmp_path):
    data = gan.data.load_images(hostile_zip, 16, 3)
    message = f"Training failed: DataError: {HOSTILE[0]} in {ZIP_NAME} ({HOSTILE[1]})"
    job = Job(
        name="20250101-120000-boom-click-16px", run_dir=tmp_path, steps=10, batch_size=2,
        data_summary=data.report.summary().splitlines()[0], data=None, spec=None, status="failed", message=message,
    )  # fmt: skip
    line = status_line(job, job.snapshot())
    assert_literal(line, [message], strong="Failed")
    for st in ("starting", "running", "stopping", "finished", "stopped"):
        job.status, job.name = st, "odd <img src=x> **run**"
        assert_literal(status_line(job, job.snapshot()), [job.name], strong=r"\w+|Resume", em=r".* \(trained here\)")


def test_model_info_shows_typed_names_and_data_names_literally(tmp_path):
    weights, runs = tmp_path / "weights", tmp_path / "runs"
    weights.mkdir()
    run = runs / "20250101-120000-boom-16px" / "model"
    run.mkdir(parents=True)
    (run / "config.json").write_text('{"image_size": 16, "channels": 3, "z_dim": 8, "g_width": 4, "d_width": 4}')
    (run / "model.safetensors").write_bytes(b"")
    (run / "training.json").write_text(json.dumps({"steps": 5, "data": ZIP_NAME}))
    models = Models(weights, runs, Scratch())
    assert_literal(models.info("trained:20250101-120000-boom-16px"), [ZIP_NAME])
    typed = "<img src=x onerror=alert(1)> [x](http://evil)"  # a value typed into the model picker
    with pytest.raises(AppError):
        models.folder(typed)
    assert_literal(models.info(typed), [typed])
