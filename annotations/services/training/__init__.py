"""Training jobs: SFT, reward model, PPO-ptx and RLOO, run by the `gpu` queue's worker.

`start` checks and queues a job, `runner` runs it in the worker (a spawned trainer process whose
events it records), `lease` keeps one runner per job (claim, heartbeat, reaper).
"""

from annotations.services.training.lease import MAX_ATTEMPTS, training_claim, training_jobs_reap
from annotations.services.training.runner import training_run
from annotations.services.training.start import (
    DATA_KIND,
    MODEL_KIND,
    TRAINER_KIND,
    model_dir,
    training_datasets,
    training_start,
)

__all__ = [
    "DATA_KIND",
    "MAX_ATTEMPTS",
    "MODEL_KIND",
    "TRAINER_KIND",
    "model_dir",
    "training_claim",
    "training_datasets",
    "training_jobs_reap",
    "training_run",
    "training_start",
]
