"""Entry point the job runner spawns: `python -m models_service.training.run SPEC.json`.

Stdout carries only protocol events (one JSON object per line). Everything else a library prints
(Trainer logs, progress bars, warnings) is sent to stderr: at start the real stdout is kept for the
events and file descriptor 1 is pointed at stderr. Exit status: 0 after `done` or `cancelled`,
1 after `error`, 2 when the command line is wrong.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from models_service.training.protocol import EventStream, Outcome, TrainingSpec
from models_service.training.runtime import Device, pick_device

Trainer = Callable[[TrainingSpec, EventStream, Device], Outcome]


def trainer_for(kind: str) -> Trainer:
    """The training function of a job kind, imported only when needed."""
    if kind == "reward":
        from models_service.training.reward_train import train_reward

        return train_reward
    if kind == "sft":
        from models_service.training.sft import train_sft

        return train_sft
    if kind == "ppo":
        from models_service.training.ppo import train_ppo

        return train_ppo
    if kind == "rloo":
        from models_service.training.rloo import train_rloo

        return train_rloo
    raise ValueError(f"unknown kind {kind!r}")


def run_spec(spec: TrainingSpec, events: EventStream, device: Device | None = None) -> int:
    """Run one job, writing its events; returns the exit status (0 done or cancelled, 1 error)."""
    try:
        device = device or pick_device()
        where = f" x {events.world_size} processes" if events.world_size > 1 else ""
        events.log(f"{spec.kind} job on {device.name}{where} (bf16={device.bf16})")
        spec.output_dir.mkdir(parents=True, exist_ok=True)
        outcome = trainer_for(spec.kind)(spec, events, device)
    except Exception as error:
        traceback.print_exc(file=sys.stderr)
        events.error(f"{type(error).__name__}: {error}")
        return 1
    if outcome.model_dir is None:  # cancelled
        events.cancelled()
    else:
        events.done(model_dir=outcome.model_dir, metrics=outcome.metrics)
    return 0


def _claim_stdout() -> TextIO:
    """A text stream on the original stdout; fd 1 (and sys.stdout) then point at stderr."""
    sys.stdout.flush()
    events_fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return os.fdopen(events_fd, "w", buffering=1, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m models_service.training.run SPEC.json", file=sys.stderr)
        return 2
    # Under `accelerate launch` (torchrun) each process learns its place from the environment.
    rank, world_size = int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
    events = EventStream(_claim_stdout(), rank=rank, world_size=world_size)
    if world_size > 1:
        events.announce(pid=os.getpid(), host=socket.gethostname())
    try:
        spec = TrainingSpec.from_dict(json.loads(Path(argv[0]).read_text(encoding="utf-8")))
    except (OSError, ValueError) as error:
        events.error(f"cannot read spec {argv[0]}: {error}")
        return 1
    return run_spec(spec, events)


if __name__ == "__main__":
    sys.exit(main())
