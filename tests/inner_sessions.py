"""Inner pytest sessions in fresh processes that do not import openai again.

An inner session (the plugin's tests run one or more per test) spends most of its time
importing: openai alone is about a second of pydantic model building, and the suite
runs about a hundred such sessions. A small process imports pytest and openai once;
each session is a ``fork()`` of it, a process of its own (own working directory,
environment, standard streams, exit code, interpreter shutdown), loading pytest's
plugins, seedcache among them, as a new process does. Nothing of seedcache is imported
before the fork.

The many-process tests start their ``python -c`` workers the same way
(:func:`start_python`).

``SEEDCACHE_TEST_FORK=0`` runs every session as ``python -m pytest`` instead (pytester's
own ``runpytest_subprocess``) and every worker as ``python -c``, as does any platform
without ``fork()``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

_FORK_SERVER = r"""
import json, os, sys, traceback

import pytest
import openai  # the import every inner session would otherwise repeat

commands, answers = sys.stdin.buffer, sys.stdout.buffer


def answer(value):
    answers.write(json.dumps(value).encode() + b"\n")
    answers.flush()


def become(job):
    # The child: a process of its own, as `python` started in job["cwd"] would be.
    os.chdir(job["cwd"])
    os.environ.clear()
    os.environ.update(job["env"])
    sys.dont_write_bytecode = bool(os.environ.get("PYTHONDONTWRITEBYTECODE"))
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    for fd, path in ((1, job["out"]), (2, job["err"])):
        os.dup2(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), fd)
    extra = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    first = job["cwd"] if "script" not in job else ""
    sys.path[:] = [first, *extra, *[p for p in sys.path[1:] if p not in extra]]
    if "script" in job:  # python -c SCRIPT ARGS...
        sys.argv = ["-c", *job["args"]]
        try:
            exec(compile(job["script"], "<string>", "exec"), {"__name__": "__main__"})
        except SystemExit:
            raise
        except BaseException:
            traceback.print_exc()
            sys.exit(1)
        sys.exit(0)
    sys.argv = ["pytest", *job["args"]]
    code = pytest.main(job["args"])
    sys.stdout.flush()
    sys.exit(int(code))


for line in commands:
    job = json.loads(line)
    if "wait" in job:
        _, status = os.waitpid(job["wait"], 0)
        answer({"ret": os.waitstatus_to_exitcode(status)})
        continue
    pid = os.fork()
    if pid == 0:
        become(job)
    answer({"pid": pid})
"""

# anyio (imported with openai) holds a pytest plugin, which pytest would have rewritten
# had it not been imported yet: the one warning a forked session gives that a new
# process does not.
_QUIET = ("-W", "ignore:Module already imported so cannot be rewritten; anyio")


class ForkServer:
    """A process that forks inner pytest sessions and ``python -c`` workers on request."""

    def __init__(self) -> None:
        env = {**os.environ}
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        self._process = subprocess.Popen(
            [sys.executable, "-c", _FORK_SERVER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
        )

    def run(self, pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
        """Like ``pytester.runpytest_subprocess(*args)``, in a forked session."""
        # pytest empties its --basetemp at start: the session's output is kept beside it.
        run_dir = Path(tempfile.mkdtemp(prefix="runpytest-", dir=pytester.path))
        arguments = [f"--basetemp={run_dir / 'basetemp'}", *_QUIET, *map(str, args)]
        cwd = os.getcwd()
        env = {**os.environ}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [cwd, env.get("PYTHONPATH", "")]))
        out, err = run_dir / "stdout", run_dir / "stderr"
        job = {"args": arguments, "cwd": cwd, "env": env, "out": str(out), "err": str(err)}
        started = time.monotonic()
        ret = self.wait(self._ask(job)["pid"])
        outlines = out.read_text(errors="replace").splitlines()
        errlines = err.read_text(errors="replace").splitlines()
        # Shown when the test fails, as pytester shows a subprocess's output.
        print("\n".join(outlines))
        print("\n".join(errlines), file=sys.stderr)
        return pytest.RunResult(ret, outlines, errlines, time.monotonic() - started)

    def start_python(self, script: str, *args: str, where: Path) -> ForkedProcess:
        """``python -c script *args``, forked; its output goes to files in ``where``."""
        env = {**os.environ}
        out = where / f"python-{time.monotonic_ns()}.out"
        err = out.with_suffix(".err")
        job = {
            "script": script,
            "args": list(args),
            "cwd": os.getcwd(),
            "env": env,
            "out": str(out),
            "err": str(err),
        }
        return ForkedProcess(self, self._ask(job)["pid"], err)

    def wait(self, pid: int) -> int:
        """The exit code of a process :meth:`start_python` started."""
        return int(self._ask({"wait": pid})["ret"])

    def _ask(self, job: dict[str, Any]) -> dict[str, Any]:
        commands, answers = self._process.stdin, self._process.stdout
        assert commands is not None
        assert answers is not None
        commands.write(json.dumps(job).encode() + b"\n")
        commands.flush()
        answer = answers.readline()
        if not answer:
            raise RuntimeError(f"the fork server stopped (exit code {self._process.poll()})")
        return dict(json.loads(answer))

    def close(self) -> None:
        """End the server once the running session, if any, has ended."""
        commands, answers = self._process.stdin, self._process.stdout
        assert commands is not None
        assert answers is not None
        commands.close()
        self._process.wait(timeout=30)
        answers.close()


class ForkedProcess:
    """A process :meth:`ForkServer.start_python` started."""

    def __init__(self, server: ForkServer, pid: int, err: Path) -> None:
        self._server, self.pid, self._err = server, pid, err

    def finish(self) -> tuple[str, int]:
        """Wait for it to end: its standard error and exit code."""
        code = self._server.wait(self.pid)
        return self._err.read_text(errors="replace"), code


def start_python(
    server: ForkServer | None, script: str, *args: str, where: Path
) -> ForkedProcess | subprocess.Popen[str]:
    """``python -c script *args``: forked from ``server`` when there is one."""
    if server is not None:
        return server.start_python(script, *args, where=where)
    return subprocess.Popen(
        [sys.executable, "-c", script, *args], stderr=subprocess.PIPE, text=True
    )


def finish(process: ForkedProcess | subprocess.Popen[str]) -> tuple[str, int]:
    """Standard error and exit code of a process :func:`start_python` started."""
    if isinstance(process, ForkedProcess):
        return process.finish()
    return process.communicate(timeout=240)[1], process.returncode


def forking_enabled() -> bool:
    return hasattr(os, "fork") and os.environ.get("SEEDCACHE_TEST_FORK", "1") != "0"


def run_forked(server: ForkServer, pytester: pytest.Pytester) -> Any:
    """A ``runpytest_subprocess`` for ``pytester`` that forks its sessions from ``server``."""

    def runpytest_subprocess(*args: str, timeout: float | None = None) -> pytest.RunResult:
        del timeout  # sessions end on their own; a hung one fails the outer test's timeout
        return server.run(pytester, *args)

    return runpytest_subprocess
