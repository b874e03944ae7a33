"""The dataset card: README.md with Hugging Face front matter, and counts as InstructGPT reports
them (Table 6: prompts per dataset and split, labeler vs customer; Table 7: prompt annotations).

Strings that come from users (project name, filter values) are written as JSON strings, which
YAML reads as plain strings, so a name cannot change the front matter's structure.
"""

import json
from typing import Any

from annotations.models.jobs import ExportKind

SOURCES = ("labeler", "customer")
TABLE_NAMES = {
    ExportKind.SFT: "SFT",
    ExportKind.RM_PAIRS: "RM",
    ExportKind.RM_RANKINGS: "RM",
    ExportKind.PPO_PROMPTS: "PPO",
    ExportKind.EVALUATION: "Evaluation",
}
TRL_USE = {
    ExportKind.SFT: "`trl.SFTTrainer` (prompt/completion, or messages for chat exports).",
    ExportKind.RM_PAIRS: "`trl.RewardTrainer` (prompt/chosen/rejected; ties are dropped).",
    ExportKind.RM_RANKINGS: "our K-way reward trainer (`completions` + `rank_groups`, best "
    "group first; indices into `completions`).",
    ExportKind.PPO_PROMPTS: "online RL trainers (`prompt` only).",
    ExportKind.EVALUATION: "evaluation of held-out prompts.",
}


def _yaml(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def dataset_card(*, manifest: dict[str, Any], flag_labels: dict[str, str]) -> str:
    """README.md for a snapshot, from its manifest alone (so card and manifest never disagree)."""
    kind = manifest["kind"]
    files = manifest["files"]
    name = f"{manifest['project_name']} {kind} v{manifest['version']}"
    front = [
        "---",
        f"pretty_name: {_yaml(name)}",
        "tags:",
        "- rlhf",
        f"- {kind}",
        "configs:",
        "- config_name: default",
        "  data_files:",
    ]
    for info in files:
        front += [f"  - split: {info['split']}", f"    path: {_yaml(info['name'])}"]
    front.append("---")
    lines = [
        *front,
        "",
        f"# {manifest['project_name']}: {kind} dataset, version {manifest['version']}",
        "",
        f"For {TRL_USE.get(kind, kind)} Format: {manifest['format']}; one file per split.",
        f"Created {manifest['created_at']} by {manifest['created_by'] or 'unknown'}; "
        f"code version {manifest['code_version']}; label schema versions "
        f"{', '.join(map(str, manifest['label_schema_versions'])) or 'n/a'}.",
        "",
        "## Prompts per split (as InstructGPT's Table 6)",
        "",
        "| dataset | split | labeler | customer |",
        "|---|---|---|---|",
    ]
    prompts = manifest["counts"]["prompts"]
    for split in sorted(prompts):
        counts = [str(prompts[split].get(source, 0)) for source in SOURCES]
        lines.append(f"| {TABLE_NAMES.get(kind, kind)} | {split} | {' | '.join(counts)} |")
    lines += ["", "## Rows per split", "", "| file | split | rows | bytes | sha256 |"]
    lines.append("|---|---|---|---|---|")
    for info in files:
        lines.append(
            f"| {info['name']} | {info['split']} | {info['rows']} | {info['bytes']} | "
            f"`{info['sha256']}` |"
        )
    lines += _rates_table(manifest["annotation_rates"], flag_labels)
    lines += ["", "## Filters", "", "```json", json.dumps(manifest["filters"], indent=2), "```"]
    return "\n".join(lines) + "\n"


def _rates_table(rates: dict[str, Any], flag_labels: dict[str, str]) -> list[str]:
    splits = sorted(rates)
    lines = ["", "## Prompt annotations (as InstructGPT's Table 7)", ""]
    if not splits or not any(rates[s]["annotated"] for s in splits):
        return [*lines, "No prompt of this snapshot has been annotated yet."]
    lines.append("Share of annotated prompts of each split that a labeler gave the flag.")
    lines += ["", "| annotation | " + " | ".join(splits) + " |", "|---|" + "---|" * len(splits)]
    annotated = " | ".join(str(rates[s]["annotated"]) for s in splits)
    lines.append(f"| annotated prompts | {annotated} |")
    for key, label in flag_labels.items():
        shares = " | ".join(f"{100 * rates[s]['rates'].get(key, 0.0):.1f}%" for s in splits)
        lines.append(f"| {label} | {shares} |")
    return lines
