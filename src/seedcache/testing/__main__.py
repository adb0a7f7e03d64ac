"""``python -m seedcache.testing``: the fake OpenAI server on its own, to record a real app
against it by hand (point the app's OPENAI_BASE_URL at the URL it prints)."""

from __future__ import annotations

import argparse
import signal
import threading

from ._server import FakeOpenAI


def main(argv: list[str] | None = None) -> None:
    """Serve until Ctrl-C (or SIGTERM)."""
    parser = argparse.ArgumentParser(
        prog="python -m seedcache.testing",
        description="A fake OpenAI API on 127.0.0.1 that behaves like the real wire.",
    )
    parser.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    parser.add_argument(
        "--fingerprint", default="fp_a1b2c3d4e5", help="the system_fingerprint it serves"
    )
    options = parser.parse_args(argv)
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    try:
        with FakeOpenAI(port=options.port, fingerprint=options.fingerprint) as server:
            print(f"fake OpenAI API at {server.base_url} (Ctrl-C stops it)", flush=True)
            print(
                "record against it with match_host=False (seedcache_match_host = false): "
                "its port is part of the URL",
                flush=True,
            )
            stopped.wait()
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        parser.exit(1, f"cannot listen on 127.0.0.1:{options.port}: {exc.strerror}\n")


if __name__ == "__main__":
    main()
