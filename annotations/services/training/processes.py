"""The trainer's processes as the runner sees them: one launcher per host (or the trainer alone
on one device), their JSON-line events merged, and why they stopped when no outcome came.

Each launcher starts in its own process group, so that the whole job (launcher and ranks) can be
told apart from the worker and stopped together.
"""

import contextlib
import json
import os
import queue
import re
import signal
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from models_service import REPO_ROOT

# torchrun's summary of the first rank that failed (torch.distributed.elastic's ChildFailedError).
ROOT_CAUSE = re.compile(
    r"Root Cause \(first observed failure\):.*?host\s*:\s*(?P<host>\S+).*?"
    r"rank\s*:\s*(?P<rank>\d+) \(local_rank: \d+\)\s*"
    r"exitcode\s*:\s*(?P<exitcode>-?\d+) \(pid: (?P<pid>\d+)\)(?: \((?P<signal>\w+)\))?",
    re.DOTALL,
)


@dataclass
class TrainerProcesses:
    """The running launchers of one attempt; `events()` yields every JSON event of any of them."""

    commands: list[list[str]]
    log_path: Path
    processes: list[subprocess.Popen] = field(default_factory=list)
    log_offset: int = 0

    def start(self) -> None:
        self.log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("a") as log:
            for command in self.commands:
                self.processes.append(
                    subprocess.Popen(
                        command,
                        cwd=REPO_ROOT,
                        stdout=subprocess.PIPE,
                        stderr=log,
                        text=True,
                        start_new_session=True,
                    )
                )

    @property
    def pid(self) -> int:
        return self.processes[0].pid

    def events(self) -> Iterator[dict[str, Any]]:
        """Events of every process in arrival order, until all their outputs close."""
        lines: queue.Queue[str | None] = queue.Queue()

        def pump(stream) -> None:
            for line in stream:
                lines.put(line)
            lines.put(None)

        for process in self.processes:
            threading.Thread(target=pump, args=(process.stdout,), daemon=True).start()
        open_streams = len(self.processes)
        while open_streams:
            line = lines.get()
            if line is None:
                open_streams -= 1
                continue
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(event, dict):
                yield event

    def wait(self) -> list[int]:
        return [process.wait() for process in self.processes]

    def stop(self, ranks: dict[str, Any]) -> None:
        """Stop whatever still runs (another host failed, the worker is leaving): each launcher's
        process group and each rank's (torchrun starts every rank in a session of its own)."""
        if all(process.poll() is not None for process in self.processes):
            return
        groups = [process.pid for process in self.processes]
        groups += [int(rank["pid"]) for rank in ranks.values()]
        for group in groups:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(group, signal.SIGTERM)

    def new_log(self) -> str:
        """What the processes of this attempt wrote to the log."""
        with self.log_path.open(errors="replace") as log:
            log.seek(self.log_offset)
            return log.read()


def rank_failure(log: str, ranks: dict[str, Any], world_size: int) -> tuple[int, str] | None:
    """The rank that died first and a sentence saying how, from the launcher's summary."""
    match = ROOT_CAUSE.search(log)
    if match is None:
        return None
    rank, exitcode = int(match["rank"]), int(match["exitcode"])
    if exitcode < 0:
        name = match["signal"] or signal.Signals(-exitcode).name
        how = f"was killed by signal {-exitcode} ({name})"
    else:
        how = f"exited with status {exitcode}"
    where = ranks.get(str(rank), {}).get("host") or match["host"]
    return rank, (
        f"Rank {rank} of {world_size} (pid {match['pid']} on {where}) {how}; "
        "the launcher stopped the other ranks."
    )
