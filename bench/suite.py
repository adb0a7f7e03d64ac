"""A replayed test suite, run as users run it: whole `pytest` processes, side by side.

The same tests (one chat call each, spread over modules) in four forms:

- floor: each test's client on `httpx2.MockTransport`, no cache at all (seedcache's
  plugin is not even loaded), answering with the very response that was recorded (same
  headers, same bytes), so the SDK does the same parsing work in every form;
- openai_client: seedcache's fixture, replaying per-test cassettes;
- wrap: each test does `seedcache.wrap(openai.OpenAI())`, replaying;
- vcrpy: pytest-recording, each test `openai.OpenAI()`, replaying;
- cassetter: cassetter's pytest plugin on the same test files (same marker), when it is
  installed (`nox -s bench` installs it).

Each form loads only its own recorder plugin (the floor none), as a project with one of
them installed would; pytest-recording and cassetter cannot load together anyway (both
add `--record-mode`).

Cassettes are recorded once from the project's fake server. Each form then runs as its
own `pytest` process, forms alternating, best of several rounds; the ratios are what
count. `--quick` runs fewer rounds and skips the 600-test variant.
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
    "cassetter": ("", "openai.OpenAI()", "@pytest.mark.vcr\n"),
}
LARGE = 600


def write_suite(root: Path, form: str, tests: int) -> None:
    fixture, client, marker = FORMS[form]
    root.mkdir(parents=True)
    (root / "tests").mkdir()
    (root / "tests" / "__init__.py").write_text("")
    # pytest's cache on, as it is by default: every form runs as users run it.
    (root / "pytest.ini").write_text("[pytest]\n")
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


# Each run loads only its own recorder plugin, as a project that installed one would:
# cassetter's and pytest-recording's cannot load together, and none should pay for
# another's start-up.
_NO_CASSETTER = ("-p", "no:cassetter")
_NO_RECORDING = ("-p", "no:recording")
_NO_SEEDCACHE = ("-p", "no:seedcache")
_SEEDCACHE_ONLY = (*_NO_CASSETTER, *_NO_RECORDING)
REPLAY_OPTIONS = {
    "floor": (*_NO_SEEDCACHE, *_NO_CASSETTER, *_NO_RECORDING),
    "openai_client": _SEEDCACHE_ONLY,
    "wrap": _SEEDCACHE_ONLY,
    "vcrpy": ("--record-mode=none", *_NO_CASSETTER, *_NO_SEEDCACHE),
    "cassetter": ("--record-mode=none", *_NO_RECORDING, *_NO_SEEDCACHE),
}
RECORD_OPTIONS = {
    "openai_client": ("--seedcache-mode=record", *_SEEDCACHE_ONLY),
    "wrap": ("--seedcache-mode=record", *_SEEDCACHE_ONLY),
    "vcrpy": ("--record-mode=once", *_NO_CASSETTER, *_NO_SEEDCACHE),
    "cassetter": ("--record-mode=once", *_NO_RECORDING, *_NO_SEEDCACHE),
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
    env.pop("PYTEST_ADDOPTS", None)  # each form names the plugins it turns off
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


def has_cassetter() -> bool:
    try:
        import cassetter  # noqa: F401
    except ImportError:
        return False
    return True


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
        if has_cassetter():
            forms.append("cassetter")
        else:
            lines.append("  cassetter is not installed (nox -s bench installs it)")
        best = measure(200, forms, temp)
        for form in forms:
            lines.append(f"  200 tests, {form:<14} {best[form]:6.2f} s")
        lines += ratio_rows(best, 200)
        if not QUICK:
            large = measure(LARGE, forms, temp)
            for form in forms:
                lines.append(f"  {LARGE} tests, {form:<14} {large[form]:6.2f} s")
            lines += ratio_rows(large, LARGE)
    print("\n".join(lines))


def ratio_rows(best: dict[str, float], tests: int) -> list[str]:
    """The goals, for one suite size."""
    per_test_ms = (best["openai_client"] - best["floor"]) / tests * 1000
    fixture_ratio = best["openai_client"] / best["floor"]
    rows = [
        row(
            f"{tests} tests: openai_client cost per test over the floor",
            per_test_ms,
            "<= 0.5",
            per_test_ms <= 0.5,
            unit="ms",
        ),
        row(
            f"{tests} tests: openai_client replay / no seedcache at all",
            fixture_ratio,
            "<= 1.15",
            fixture_ratio <= 1.15,
        ),
        row(
            f"{tests} tests: each test wrap(OpenAI()) / pytest-recording",
            best["wrap"] / best["vcrpy"],
            "<= 1.0",
            best["wrap"] <= best["vcrpy"],
        ),
    ]
    if "cassetter" in best:
        rows.append(
            row(
                f"{tests} tests: each test wrap(OpenAI()) / cassetter",
                best["wrap"] / best["cassetter"],
                "<= 1.0",
                best["wrap"] <= best["cassetter"],
            )
        )
    return rows


if __name__ == "__main__":
    main()
