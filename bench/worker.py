"""A peer library in a subprocess that times itself: the client (Worker) and the worker's loop
(serve). numpy_peer and torch_peer build on it.

The main process drives a worker over JSON lines on stdin/stdout, one request per sample, so
its samples interleave with fastdl's (A B A B) although it runs in another process; the worker
times only the calls, not the messages. Its pid joins timing.helper_pids, so its CPU time counts
as ours (not "others'") and the harness waits for it to go idle between sides.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Callable

from . import timing
from .timing import Side

REPO_ROOT = Path(__file__).resolve().parent.parent


class PeerError(RuntimeError):
    pass


class Worker:
    """A running worker: `python -m MODULE ARGS...` (command), optionally in environment env."""

    def __init__(self, command: list[str], env: dict | None = None) -> None:
        self._proc = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
            cwd=REPO_ROOT,
            env=env,
        )
        self.command = " ".join(command)
        timing.helper_pids.add(self._proc.pid)  # (`env` execs python: the same pid)
        self._next_key = 0

    def request(self, **req) -> dict:
        if self._proc.poll() is not None:
            raise PeerError(f"worker `{self.command}` exited with code {self._proc.returncode}")
        self._proc.stdin.write(json.dumps(req) + "\n")
        self._proc.stdin.flush()
        line = self._proc.stdout.readline()
        if not line:
            raise PeerError(f"worker `{self.command}` closed its output")
        reply = json.loads(line)
        if "error" in reply:
            raise PeerError(reply["error"])
        return reply

    def info(self) -> dict:
        return dict(self.request(op="info"), command=self.command)

    def side(self, name: str, **setup) -> Side:
        """A side that times, in the worker, the call that request op="setup" with `setup`
        prepares there."""
        key = self._next_key = self._next_key + 1
        self.request(op="setup", key=key, **setup)
        return Side(name, lambda reps: self.request(op="time", key=key, reps=reps)["seconds"])

    def free(self) -> None:
        self.request(op="free")

    def close(self) -> None:
        timing.helper_pids.discard(self._proc.pid)
        if self._proc.poll() is None:
            try:
                self._proc.stdin.close()
                self._proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self._proc.kill()
                self._proc.wait()


def serve(setup: Callable[[dict], Callable[[], object]], handle: Callable[[dict], dict]) -> None:
    """The worker's loop: op "setup" stores setup(req) under req["key"]; "time" calls it
    req["reps"] times and answers the seconds per call; "free" forgets them all; any other op
    goes to handle(req). An exception is answered as {"error": ...}."""
    calls: dict[int, Side] = {}

    def answer(req: dict) -> dict:
        op = req["op"]
        if op == "setup":
            calls[req["key"]] = timing.local("", setup(req))
            return {}
        if op == "time":  # (timing.local: the garbage collector off while timed)
            return {"seconds": calls[req["key"]].run(req["reps"])}
        if op == "free":
            calls.clear()
            return {}
        return handle(req)

    for line in sys.stdin:
        try:
            reply = answer(json.loads(line))
        except Exception as exc:  # noqa: BLE001 (reported to the client, which marks the row)
            reply = {"error": f"{type(exc).__name__}: {exc}"}
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()
