"""Training jobs (reward model, SFT, PPO-ptx, RLOO) run as a subprocess by the job runner.

Entry point: `python -m models_service.training.run SPEC.json`, which prints one JSON event per line
(see `models_service.training.protocol`). Submodules import torch; this package module stays
import-light so the Django side can import names from it without loading torch.
"""
