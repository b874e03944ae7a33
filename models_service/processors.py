"""The per-row logits processors and stopping criteria that `sampling.generate_rows` hands to
`model.generate`: each row's temperature, top-p and Gumbel noise from its own generator, the
log-probabilities it asked for, and its stop strings and token budget."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, cast

import torch
from transformers import LogitsProcessor, StoppingCriteria

if TYPE_CHECKING:
    from models_service.sampling import RowRequest

SEED_MODULUS = 2**63


def perturb_scores(
    scores: torch.Tensor,
    *,
    temperatures: torch.Tensor,
    top_ps: torch.Tensor,
    generators: Sequence[torch.Generator | None],
) -> torch.Tensor:
    """Scores whose argmax is a sample from each row's softmax(scores / T) within its top-p nucleus.

    Rows with temperature 0 (generator None) are returned unchanged, so their argmax is greedy.
    """
    sampled = temperatures > 0
    scaled = torch.where(sampled[:, None], scores / temperatures.clamp_min(1e-6)[:, None], scores)
    top_ps = torch.where(sampled, top_ps, torch.ones_like(top_ps))
    if bool((top_ps < 1).any()):
        scaled = scaled.masked_fill(outside_top_p(scaled, top_ps), float("-inf"))
    # Generators live on the CPU: draw all rows' noise there and move it in one copy.
    uniform = torch.ones(scaled.shape, dtype=torch.float32)
    for index, generator in enumerate(generators):
        if generator is not None:
            torch.rand(scaled.shape[-1], generator=generator, out=uniform[index])
    noise = -torch.log(-torch.log(uniform))
    noise[torch.tensor([generator is None for generator in generators])] = 0.0
    return scaled + noise.to(device=scaled.device, dtype=scaled.dtype)


def outside_top_p(logits: torch.Tensor, top_ps: torch.Tensor) -> torch.Tensor:
    """True for tokens outside each row's nucleus: the smallest set of most likely tokens whose
    probability reaches top_p. The most likely token is always kept; top_p >= 1 keeps all."""
    sorted_logits, order = logits.sort(dim=-1, descending=True)
    probs = sorted_logits.softmax(dim=-1)
    mass_before = probs.cumsum(dim=-1) - probs
    threshold = torch.where(top_ps < 1, top_ps, torch.full_like(top_ps, float("inf")))
    remove_sorted = mass_before >= threshold[:, None].to(mass_before.dtype)
    remove_sorted[:, 0] = False
    return torch.zeros_like(remove_sorted).scatter(-1, order, remove_sorted)


class RowSampler(LogitsProcessor):
    """Applies `perturb_scores` with per-row temperature, top-p and random generator."""

    def __init__(self, *, temperatures, top_ps, generators) -> None:
        self.temperatures = temperatures
        self.top_ps = top_ps
        self.generators = generators

    @classmethod
    def for_rows(cls, rows: Sequence[RowRequest], *, device) -> RowSampler:
        generators = [
            torch.Generator().manual_seed(row.seed % SEED_MODULUS) if row.temperature > 0 else None
            for row in rows
        ]
        return cls(
            temperatures=torch.tensor([row.temperature for row in rows], device=device),
            top_ps=torch.tensor([row.top_p for row in rows], device=device),
            generators=generators,
        )

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        perturbed = perturb_scores(
            scores, temperatures=self.temperatures, top_ps=self.top_ps, generators=self.generators
        )
        return cast(torch.FloatTensor, perturbed)


class LogprobRecorder(LogitsProcessor):
    """Records the raw log-softmax of each step, leaving scores unchanged.

    The token chosen at step t is only visible at step t + 1 (or in the final sequences), so each
    step's log-softmax is kept until then and reduced to the chosen token's value: memory stays at
    one (rows x vocab) tensor however long the generation.
    """

    def __init__(self, *, prompt_width: int, top_k: int) -> None:
        self.prompt_width = prompt_width
        self.top_k = top_k
        self.pending: dict[int, torch.Tensor] = {}
        self.chosen: dict[int, torch.Tensor] = {}
        self.top: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        step = input_ids.shape[1] - self.prompt_width
        self._resolve(input_ids)
        logprobs = scores.float().log_softmax(dim=-1)
        self.pending[step] = logprobs
        if self.top_k:
            values, ids = logprobs.topk(min(self.top_k, logprobs.shape[-1]), dim=-1)
            self.top[step] = (values.cpu(), ids.cpu())
        return scores

    def _resolve(self, sequences: torch.Tensor) -> None:
        generated = sequences.shape[1] - self.prompt_width
        for step in [step for step in self.pending if step < generated]:
            tokens = sequences[:, self.prompt_width + step].to(self.pending[step].device)
            self.chosen[step] = self.pending.pop(step).gather(-1, tokens[:, None])[:, 0].cpu()

    def finish(self, sequences: torch.Tensor):
        """(rows x steps) chosen-token logprobs and, if asked, (values, ids) of the top k."""
        self._resolve(sequences)
        steps = sequences.shape[1] - self.prompt_width
        rows = sequences.shape[0]
        chosen = (
            torch.stack([self.chosen[s] for s in range(steps)], dim=1)
            if steps
            else (torch.zeros(rows, 0))
        )
        if not self.top_k or not steps:
            return chosen, None
        values = torch.stack([self.top[s][0] for s in range(steps)], dim=1)
        ids = torch.stack([self.top[s][1] for s in range(steps)], dim=1)
        return chosen, (values, ids)


class RowStoppingCriteria(StoppingCriteria):
    """Marks a row finished when it reaches its own token limit or produces one of its stop
    strings, so a batch ends as soon as every row is done."""

    def __init__(self, rows: Sequence[RowRequest], *, tokenizer, prompt_width: int) -> None:
        self.tokenizer = tokenizer
        self.prompt_width = prompt_width
        self.limits = torch.tensor([row.max_new_tokens for row in rows])
        self.stops = {i: row.stop for i, row in enumerate(rows) if row.stop}
        # A stop string of c characters spans at most 4c byte-level tokens.
        self.windows = {i: 4 * max(len(s) for s in stop) + 2 for i, stop in self.stops.items()}

    def __call__(self, input_ids: torch.LongTensor, scores, **kwargs) -> torch.BoolTensor:
        generated = input_ids.shape[1] - self.prompt_width
        done = self.limits <= generated
        for index, stop in self.stops.items():
            if done[index]:
                continue
            start = max(self.prompt_width, input_ids.shape[1] - self.windows[index])
            tail = self.tokenizer.decode(input_ids[index, start:], skip_special_tokens=True)
            done[index] = any(s in tail for s in stop)
        return cast(torch.BoolTensor, done.to(input_ids.device))
