"""Sessions: tests, lint, typing, demo. Run `nox -s lint typing tests`."""

from __future__ import annotations

import nox

nox.options.sessions = ["lint", "typing", "tests"]
nox.options.reuse_existing_virtualenvs = True


@nox.session
def tests(session: nox.Session) -> None:
    """The whole test suite, one worker per core."""
    session.install("-e", ".[test]")
    session.run("pytest", "-n", "auto", *session.posargs)


@nox.session
def stress(session: nox.Session) -> None:
    """The heavy reliability tests alone: many processes on one store, crashes, fuzzing."""
    session.install("-e", ".[test]")
    session.env["SEEDCACHE_STRESS_SCALE"] = "8"
    session.run(
        "pytest",
        "tests/integration/trust/test_stress.py",
        "tests/integration/trust/test_hostile.py",
        *session.posargs,
    )


@nox.session
def lint(session: nox.Session) -> None:
    """ruff: style and common bugs, on everything we ship or run."""
    session.install("ruff>=0.8")
    session.run("ruff", "check", "src", "tests", "examples", "bench", "noxfile.py")
    session.run("ruff", "format", "--check", "src")


@nox.session
def typing(session: nox.Session) -> None:
    """mypy --strict on src/."""
    session.install("-e", ".[typing]")
    session.run("mypy", "--strict", "src")


@nox.session
def demo(session: nox.Session) -> None:
    """The cookbook example, replayed offline from cassettes/ (no API key)."""
    session.install(".")
    session.run("python", "examples/journey_to_mars.py")


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks, each printing ratios measured side by side in one run."""
    session.install(".[serve,test]", "vcrpy>=7", "pytest-recording>=0.13", "cassetter>=0.16")
    # cassetter's pytest plugin and pytest-recording's cannot load together (both add
    # --record-mode): off by default here; bench/suite.py picks one per pytest run.
    session.env["PYTEST_ADDOPTS"] = "-p no:cassetter"
    scripts = ("suite", "ttfc", "replay", "peers", "parallel", "listing", "proxy", "report")
    for script in scripts:
        session.run("python", f"bench/{script}.py", *session.posargs)
