"""GAN Lab: the launcher a Hugging Face Space runs. The app itself lives in gan/ui/.

python app.py                      # http://127.0.0.1:7860 (0.0.0.0 on a Hugging Face Space)
python app.py --port 8080 --weights weights --runs runs/app
"""

from __future__ import annotations

import argparse
import atexit
import signal
import sys

from gan.ui import Settings, build_app, launch_options


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="GAN Lab: train, sample and explore small DCGANs in the browser")
    p.add_argument("--host", default=None, help="default: env GRADIO_SERVER_NAME, else 127.0.0.1 (0.0.0.0 on a Space)")
    p.add_argument("--port", type=int, default=None, help="default: env GRADIO_SERVER_PORT, else 7860")
    p.add_argument("--weights", default=None, help="folder of shipped model folders (default: weights/)")
    p.add_argument("--runs", default=None, help="where runs started in the app go (default: runs/app)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    settings = Settings.from_env(host=args.host, port=args.port, weights_dir=args.weights, runs_dir=args.runs)
    demo = build_app(settings)
    atexit.register(demo.lab.runner.shutdown)  # Ctrl-C: the running job writes its checkpoint first
    signal.signal(signal.SIGTERM, lambda *_: on_sigterm(demo))  # what a Space restart sends
    demo.queue(default_concurrency_limit=1)
    demo.launch(
        server_name=settings.host, server_port=settings.port, max_file_size=settings.max_upload, **launch_options()
    )
    return 0


def on_sigterm(demo) -> None:
    """SIGTERM: the training child writes a checkpoint of its current step and ends, then the app exits
    (atexit and finalizers run: scratch folders go)."""
    demo.lab.runner.shutdown()
    raise SystemExit(0)


if __name__ == "__main__":
    sys.exit(main())
