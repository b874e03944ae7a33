"""How a training job is launched: a preset per job, turned into `accelerate launch` commands.

Presets (config files in `deploy/accelerate/`):
- `single`: one process on one device (the trainer runs directly: a launcher with one process
  would only add a parent process);
- `ddp`: data parallel, one process per GPU (on a CPU machine, processes over gloo);
- `fsdp`: fully sharded data parallel (SFT, reward model);
- `zero2`, `zero3`: DeepSpeed ZeRO stage 2 / 3 (SFT, reward model, RLOO), needs `deepspeed`.

Several hosts make a multi-node job: the runner starts one launcher per host (the first host is
the main one, `machine_rank` 0, where the runner itself lives; the others over ssh), each with the
same spec on shared storage. Our PPO serves one node with DDP; beyond that, the Ray/OpenRLHF
backend spreads actor, critic, reference and reward over a cluster.

Torch-free: the web app checks a plan before queueing the job.
"""

from __future__ import annotations

import re
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from models_service import REPO_ROOT

CONFIG_DIR = REPO_ROOT / "deploy" / "accelerate"
PRESETS: dict[str, str] = {
    "single": "One device",
    "ddp": "DDP (data parallel)",
    "fsdp": "FSDP (sharded)",
    "zero2": "DeepSpeed ZeRO-2",
    "zero3": "DeepSpeed ZeRO-3",
}
# What each trainer can run under: our PPO keeps four models on every rank (data parallel only);
# TRL's trainers (SFT, RLOO) and our reward-model loop (one model) take every preset.
SUPPORTED: dict[str, tuple[str, ...]] = {
    "sft": tuple(PRESETS),
    "reward": tuple(PRESETS),
    "rloo": tuple(PRESETS),
    "ppo": ("single", "ddp"),
}
LOCAL_HOSTS = ("localhost", "127.0.0.1")
# A host goes on an ssh command line: a name or an address, never something ssh reads as an option.
HOST = re.compile(r"[A-Za-z0-9][A-Za-z0-9.-]{0,252}|\[[0-9A-Fa-f:]+\]|[0-9A-Fa-f:]+")
DEFAULT_PORT = 29500


@dataclass(frozen=True)
class LaunchPlan:
    """`processes` per host; `hosts` empty for one machine, else every host of the job in
    order (the first is the main one, reachable from the others at `main_port`)."""

    preset: str = "single"
    processes: int = 1
    hosts: tuple[str, ...] = field(default_factory=tuple)
    main_port: int = DEFAULT_PORT

    @classmethod
    def from_dict(cls, raw: dict[str, Any] | None) -> LaunchPlan:
        raw = raw or {}
        hosts = raw.get("hosts") or ()
        if isinstance(hosts, str):
            hosts = [h.strip() for h in hosts.replace("\n", ",").split(",") if h.strip()]
        return cls(
            preset=str(raw.get("preset") or "single"),
            processes=int(raw.get("processes") or 1),
            hosts=tuple(str(h) for h in hosts),
            main_port=int(raw.get("main_port") or DEFAULT_PORT),
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "preset": self.preset,
            "processes": self.processes,
            "hosts": list(self.hosts),
            "main_port": self.main_port,
        }

    @property
    def machines(self) -> int:
        return max(1, len(self.hosts))

    @property
    def world_size(self) -> int:
        return self.processes * self.machines

    @property
    def uses_launcher(self) -> bool:
        return self.world_size > 1 or self.preset != "single"


def plan_problems(kind: str, plan: LaunchPlan) -> list[str]:
    """What is wrong with running `kind` under `plan`, as sentences saying what to change."""
    problems = []
    if plan.preset not in PRESETS:
        problems.append(f"preset must be one of {', '.join(PRESETS)}; got {plan.preset!r}")
    elif plan.preset not in SUPPORTED.get(kind, ()):
        problems.append(
            f"{kind} runs under {' or '.join(SUPPORTED[kind])}; for {plan.preset} at scale use "
            "the Ray/OpenRLHF backend"
        )
    if not 1 <= plan.processes <= 64:
        problems.append(f"processes per host must be 1 to 64; got {plan.processes}")
    if plan.preset == "single" and plan.world_size > 1:
        problems.append("the single preset runs one process: choose ddp, fsdp or a ZeRO preset")
    if not 1024 <= plan.main_port <= 65535:
        problems.append(f"main_port must be 1024 to 65535; got {plan.main_port}")
    if any(not HOST.fullmatch(host) for host in plan.hosts):
        problems.append(
            "hosts are host names or IP addresses (letters, digits, dots, dashes; not starting "
            "with a dash), one per machine"
        )
    if len(set(plan.hosts)) != len(plan.hosts) and not set(plan.hosts) <= set(LOCAL_HOSTS):
        problems.append("each host appears once")
    return problems


def launcher_commands(
    plan: LaunchPlan, spec_path: Path, *, python: str = sys.executable
) -> list[list[str]]:
    """One command per host (the main host first). Without a launcher: the trainer itself."""
    trainer = ["-m", "models_service.training.run", str(spec_path)]
    if not plan.uses_launcher:
        return [[python, *trainer]]
    hosts = plan.hosts or ("127.0.0.1",)
    commands = []
    for rank, host in enumerate(hosts):
        command = [
            python,
            "-m",
            "accelerate.commands.launch",
            *_preset_args(plan.preset),
            "--num_processes",
            str(plan.world_size),
            "--num_machines",
            str(plan.machines),
            "--machine_rank",
            str(rank),
            "--main_process_ip",
            hosts[0],
            "--main_process_port",
            str(plan.main_port),
            "--monitor_interval",
            "1",
            *trainer,
        ]
        if host not in LOCAL_HOSTS and rank > 0:
            remote = f"cd {shlex.quote(str(REPO_ROOT))} && {shlex.join(command)}"
            command = ["ssh", "-o", "BatchMode=yes", host, remote]
        commands.append(command)
    return commands


def _preset_args(preset: str) -> list[str]:
    if preset in ("single", "ddp"):
        # `--multi_gpu` means "start N processes with torchrun": on a machine without CUDA the
        # trainers then join over gloo (Accelerator(cpu=True)).
        return ["--config_file", str(CONFIG_DIR / "ddp.yaml"), "--multi_gpu"]
    return ["--config_file", str(CONFIG_DIR / f"{preset}.yaml")]
