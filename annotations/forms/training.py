"""The training form: the data, the models, and one field per hyperparameter of the kind, holding
the trainer's defaults (the paper's where they apply) with short help."""

from dataclasses import MISSING, fields
from typing import Any

from django import forms

from models_service.training.hyperparameters import BY_KIND
from models_service.training.launch import PRESETS

HELP = {
    "learning_rate": "Paper: SFT 9.65e-6 (cosine), RM 9e-6 (cosine), PPO 9.65e-6 (constant).",
    "epochs": "Paper: SFT 16 epochs, RM 1 epoch (more overfits), PPO 256k episodes.",
    "prompts_per_batch": "RM: prompts per optimisation step, all K of a prompt together "
    "(paper: 64). Empty: min(64, prompts / 16).",
    "prompts_per_forward": "RM: prompts per forward pass (memory bound). Empty: all of the batch.",
    "beta": "KL penalty per token against the SFT policy (paper: 0.02).",
    "gamma_ptx": "Pretraining-loss coefficient (paper: 27.8); 0 gives plain PPO.",
    "clip": "Clipping of the policy ratio (paper: 0.2).",
    "lam": "GAE lambda.",
    "gamma": "Discount (paper: 1, no discount).",
    "batch_size": "Episodes per PPO batch (paper: 512) / rows per SFT step.",
    "minibatch_size": "PPO minibatch (paper: 64).",
    "max_new_tokens": "Longest sampled response during PPO.",
    "checkpoint_every": "Steps between checkpoints (each PPO checkpoint is registered with its "
    "reward and KL).",
    "num_generations": "RLOO: samples per prompt (the leave-one-out baseline uses the others).",
    "max_steps": "Stop after this many steps (-1 or empty: run the epochs).",
    "value_learning_rate": "PPO: the value model's learning rate (empty: the policy's).",
    "missing_eos_penalty": "Subtracted from the reward of responses that hit the token limit.",
    "micro_batch_size": "Episodes per forward; gradients accumulate to the minibatch.",
    "gradient_accumulation_steps": "Forwards per optimisation step (memory against speed).",
    "activation_checkpointing": "Recompute activations in the backward pass (less memory).",
    "sample_every": "Steps between tables of sample generations on the job page (0: never).",
    "lora_rank": "0 trains every weight; above 0, a LoRA adapter of this rank (merged for "
    "serving, the adapter kept beside).",
    "lora_target_modules": "all-linear, or comma-separated module names (q_proj,v_proj).",
    "load_in_4bit": "QLoRA: the frozen base in 4 bits (needs a GPU and bitsandbytes).",
}
KIND_CHOICES = [("sft", "SFT"), ("reward", "Reward model"), ("ppo", "PPO-ptx"), ("rloo", "RLOO")]


def _field_for(name: str, type_name: str, default: Any) -> forms.Field:
    optional = "None" in type_name or default is None
    common = {
        "required": not optional and "bool" not in type_name,
        "initial": default,
        "help_text": HELP.get(name, ""),
        "label": name.replace("_", " ").capitalize(),
    }
    if "bool" in type_name:
        return forms.BooleanField(**{**common, "required": False})
    if "float" in type_name:
        return forms.FloatField(**common)
    if "int" in type_name:
        return forms.IntegerField(**common)
    return forms.CharField(**common)


class TrainingForm(forms.Form):
    dataset = forms.ChoiceField(help_text="A finished export snapshot of the kind this job reads.")
    base_model = forms.ChoiceField(
        help_text="SFT and PPO start from a policy; the RM from a "
        "model whose head becomes the reward."
    )
    reward_model = forms.ChoiceField(
        required=False,
        help_text="PPO/RLOO: the reward model (PPO also initialises its value function from it).",
    )
    demonstrations = forms.ChoiceField(
        required=False,
        help_text="RM: an SFT snapshot whose demonstrations score 0 on average after training.",
    )
    pretrain = forms.ChoiceField(
        required=False, help_text="PPO-ptx: an SFT snapshot for the log-likelihood term."
    )
    seed = forms.IntegerField(required=False, help_text="Empty: a random seed (recorded).")
    launch_backend = forms.ChoiceField(
        label="Backend",
        choices=[
            ("local", "Our trainers (accelerate)"),
            ("ray_openrlhf", "Ray cluster (OpenRLHF)"),
        ],
        initial="local",
        help_text="Reward model and PPO can also run on the Ray cluster running OpenRLHF "
        "(actor, critic, reference and reward over its GPUs, vLLM rollouts, ZeRO-3).",
    )
    launch_nodes = forms.IntegerField(
        label="Ray nodes", min_value=1, initial=1, help_text="Ray backend: nodes per model."
    )
    launch_gpus_per_node = forms.IntegerField(
        label="Ray GPUs per node", min_value=1, initial=8, help_text="Ray backend only."
    )
    launch_preset = forms.ChoiceField(
        label="Launch",
        choices=list(PRESETS.items()),
        initial="single",
        help_text="How the trainer runs: one device, or through accelerate launch: DDP over N "
        "processes per host, FSDP, DeepSpeed ZeRO-2/3 (SFT, RM, RLOO). PPO: one device or DDP.",
    )
    launch_processes = forms.IntegerField(
        label="Processes per host",
        min_value=1,
        max_value=64,
        initial=1,
        help_text="Usually one per GPU.",
    )
    launch_hosts = forms.CharField(
        label="Hosts",
        required=False,
        help_text="Multi-node: every host of the job, comma-separated, this worker's first "
        "(the others are reached over ssh and share the media storage). Empty: this machine.",
    )

    def __init__(self, *args: Any, kind: str, choices: dict[str, list], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.kind = kind
        for name in ("dataset", "base_model", "reward_model", "demonstrations", "pretrain"):
            field = self.fields[name]
            assert isinstance(field, forms.ChoiceField)
            field.choices = choices.get(name, [])
        if kind not in ("ppo", "rloo"):
            del self.fields["reward_model"]
        if kind != "reward":
            del self.fields["demonstrations"]
        if kind != "ppo":
            del self.fields["pretrain"]
        if kind not in ("reward", "ppo"):
            for name in ("launch_backend", "launch_nodes", "launch_gpus_per_node"):
                del self.fields[name]
        for spec in fields(BY_KIND[kind]):
            default = None if spec.default is MISSING else spec.default
            self.fields[f"hp_{spec.name}"] = _field_for(spec.name, str(spec.type), default)

    def hyperparameters(self) -> dict[str, Any]:
        """The hyperparameters that differ from the defaults."""
        chosen = {}
        for field in fields(BY_KIND[self.kind]):
            value = self.cleaned_data.get(f"hp_{field.name}")
            if value is not None and value != field.default:
                chosen[field.name] = value
        return chosen

    def backend(self) -> tuple[str, dict[str, Any] | None]:
        data = self.cleaned_data
        if data["launch_backend"] == "local":
            return "local", None
        return data["launch_backend"], {
            "nodes": data["launch_nodes"],
            "gpus_per_node": data["launch_gpus_per_node"],
        }

    def launch(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            "preset": data["launch_preset"],
            "processes": data["launch_processes"],
            "hosts": data.get("launch_hosts") or "",
        }

    def hyperparameter_fields(self) -> list:
        return [self[name] for name in self.fields if name.startswith("hp_")]

    def data_fields(self) -> list:
        return [self[name] for name in self.fields if not name.startswith(("hp_", "launch_"))]

    def launch_fields(self) -> list:
        return [self[name] for name in self.fields if name.startswith("launch_")]
