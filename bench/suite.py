"""A replayed test suite, run as users run it: whole `pytest` processes, side by side.

The same tests (one chat call each, spread over modules) in four forms:

- floor: each test's client on `httpx2.MockTransport`, no cache at all, answering with
  the very response that was recorded (same headers, same bytes), so the SDK does the
  same parsing work in every form;
- openai_client: seedcache's fixture, replaying per-test cassettes;
- wrap: each test does `seedcache.wrap(openai.OpenAI())`, replaying;
- vcrpy: pytest-recording, each test `openai.OpenAI()`, replaying.

Cassettes are recorded once from the project's fake server. Each form then runs as its
own `pytest` process, forms alternating, best of several rounds; the ratios are what
count. `--quick` runs fewer rounds and skips the 1,000-test variant.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _table import row

from seedcache.testing import FakeOpenAI

QUICK = "--quick" in sys.argv
ROUNDS = 2 if QUICK else 4
MODULES = 10

CALL = 'model="gpt-4o-mini", messages=[{"role": "user", "content": "Mars %d?"}], seed=%d'

FLOOR_CONFTEST = """
import json, pathlib, re

import httpx2, openai, pytest

# The responses the cache replays, by prompt number: the floor answers with the same.
ANSWERS = json.loads((pathlib.Path(__file__).parent / "answers.json").read_text())

def _answer(request):
    number = re.search(rb"Mars (\\d+)\\?", request.content).group(1).decode()
    headers, body = ANSWERS[number]
    return httpx2.Response(200, headers=headers, content=body.encode())

@pytest.fixture
def client():
    http = openai.DefaultHttpxClient(transport=httpx2.MockTransport(_answer))
    return openai.OpenAI(api_key="sk-floor", http_client=http)
"""

FORMS = {
    "floor": ("client", "client", ""),
    "openai_client": ("openai_client", "openai_client", ""),
    "wrap": ("seedcache", "seedcache.wrap(openai.OpenAI())", ""),
    "vcrpy": ("", "openai.OpenAI()", "@pytest.mark.vcr\n"),
}


def write_suite(root: Path, form: str, tests: int) -> None:
    fixture, client, marker = FORMS[form]
    root.mkdir(parents=True)
    (root / "tests").mkdir()
    (root / "tests" / "__init__.py").write_text("")
    (root / "pytest.ini").write_text("[pytest]\naddopts = -p no:cacheprovider\n")
    if form == "floor":
        (root / "tests" / "conftest.py").write_text(FLOOR_CONFTEST)
    per_module = tests // MODULES
    for module in range(MODULES):
        lines = ["import openai", "import pytest", ""]
        for number in range(module * per_module, (module + 1) * per_module):
            lines += [
                "",
                f"{marker}def test_{number}({fixture}):",
                f"    reply = {client}.chat.completions.create({CALL % (number, number)})",
                "    assert reply.choices[0].message.content",
            ]
        (root / "tests" / f"test_m{module}.py").write_text("\n".join(lines) + "\n")


def pytest_run(root: Path, *options: str, env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "tests", *options],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{root.name} {' '.join(options)} failed:\n{done.stdout[-3000:]}")
    return elapsed


REPLAY_OPTIONS = {
    "floor": (),
    "openai_client": (),
    "wrap": (),
    "vcrpy": ("--record-mode=none",),
}
RECORD_OPTIONS = {
    "openai_client": ("--seedcache-mode=record",),
    "wrap": ("--seedcache-mode=record",),
    "vcrpy": ("--record-mode=once",),
}


def floor_answers(recorded: Path, floor: Path) -> None:
    """Give the floor suite the responses recorded for the openai_client suite."""
    from seedcache._stores._cassette import read_cassette

    answers = {}
    for path in recorded.glob("cassettes/**/*.json"):
        for entry in read_cassette(path).entries:
            content = entry.request["body"]["messages"][0]["content"]
            number = content.removeprefix("Mars ").removesuffix("?")
            take = entry.takes[0]
            answers[number] = [
                [list(pair) for pair in take.headers] + [["x-seedcache", "hit"]],
                take.body.decode(),
            ]
    (floor / "tests" / "answers.json").write_text(json.dumps(answers))


def measure(tests: int, forms: list[str], temp: Path) -> dict[str, float]:
    """Best wall time of each form over the rounds, forms alternating."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "SEEDCACHE_"))}
    with FakeOpenAI() as fake:
        env["OPENAI_BASE_URL"] = fake.base_url
        env["OPENAI_API_KEY"] = "sk-bench-recording"
        for form in forms:
            write_suite(temp / f"{form}-{tests}", form, tests)
            if form in RECORD_OPTIONS:
                pytest_run(temp / f"{form}-{tests}", *RECORD_OPTIONS[form], env=env)
    if "floor" in forms:
        floor_answers(temp / f"openai_client-{tests}", temp / f"floor-{tests}")
    # Replays never reach the (stopped) server; the URL stays so the keys match.
    env["OPENAI_API_KEY"] = "sk-bench-replay"
    best = {form: float("inf") for form in forms}
    for _ in range(ROUNDS):
        for form in forms:
            seconds = pytest_run(temp / f"{form}-{tests}", *REPLAY_OPTIONS[form], env=env)
            best[form] = min(best[form], seconds)
    return best


def main() -> None:
    try:
        import pytest_recording  # noqa: F401
    except ImportError:
        raise SystemExit(
            "bench/suite.py needs pytest-recording: `pip install pytest-recording`"
        ) from None
    lines = [f"replayed test suites, whole pytest runs, best of {ROUNDS} alternating rounds"]
    with tempfile.TemporaryDirectory() as directory:
        temp = Path(directory)
        forms = ["floor", "openai_client", "wrap", "vcrpy"]
        best = measure(200, forms, temp)
        for form in forms:
            lines.append(f"  200 tests, {form:<14} {best[form]:6.2f} s")
        fixture_ratio = best["openai_client"] / best["floor"]
        wrap_ratio = best["wrap"] / best["vcrpy"]
        lines.append(
            row(
                "openai_client replay / MockTransport floor",
                fixture_ratio,
                "<= 1.3",
                fixture_ratio <= 1.3,
            )
        )
        lines.append(
            row(
                "each test wrap(OpenAI()) / pytest-recording",
                wrap_ratio,
                "<= 1.0",
                wrap_ratio <= 1.0,
            )
        )
        if not QUICK:
            large = measure(1000, ["floor", "openai_client"], temp)
            for form in ("floor", "openai_client"):
                lines.append(f"  1000 tests, {form:<13} {large[form]:6.2f} s")
            per_test_200 = (best["openai_client"] - best["floor"]) / 200 * 1000
            per_test_1000 = (large["openai_client"] - large["floor"]) / 1000 * 1000
            lines.append(
                f"  seedcache's cost per test over the floor: {per_test_200:.2f} ms at 200 tests, "
                f"{per_test_1000:.2f} ms at 1000"
            )
            ratio = large["openai_client"] / large["floor"]
            lines.append(row("1000 tests: openai_client / floor", ratio, "<= 1.3", ratio <= 1.3))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
