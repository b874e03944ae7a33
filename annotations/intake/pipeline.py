"""The filters every prompt passes, in order: length, duplicates (in the batch and stored),
split by customer, PII removal from train, the per-customer cap. Imports, the API and prompts
written by labelers all go through this one pipeline."""

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Count

from annotations.intake.rows import PromptRow
from annotations.intake.text import dedup_key, detect_pii, estimate_tokens, split_for_customer
from annotations.models import CustomerSplit, Project, Prompt
from annotations.users import User

SAMPLE_LIMIT = 200  # rows listed by line in a report; counts are always complete


@dataclass
class IntakeReport:
    rows: int = 0
    imported: int = 0
    invalid: int = 0
    duplicates_in_file: int = 0
    duplicates_existing: int = 0
    over_cap: int = 0
    pii_flagged: int = 0
    pii_removed: int = 0
    too_long: int = 0
    per_split: Counter = field(default_factory=Counter)
    per_source: Counter = field(default_factory=Counter)
    errors: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[dict[str, Any]] = field(default_factory=list)

    def error(self, line: int, message: str) -> None:
        self.invalid += 1
        if len(self.errors) < SAMPLE_LIMIT:
            self.errors.append({"line": line, "message": message})

    def reject(self, line: int, reason: str) -> None:
        if len(self.rejected) < SAMPLE_LIMIT:
            self.rejected.append({"line": line, "reason": reason})

    def as_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "imported": self.imported,
            "invalid": self.invalid,
            "duplicates": self.duplicates_in_file + self.duplicates_existing,
            "duplicates_in_file": self.duplicates_in_file,
            "duplicates_existing": self.duplicates_existing,
            "over_cap": self.over_cap,
            "pii_flagged": self.pii_flagged,
            "pii_removed_from_train": self.pii_removed,
            "too_long": self.too_long,
            "per_split": {s: self.per_split.get(s, 0) for s in ("train", "valid", "test")},
            "per_source": dict(self.per_source),
            "errors": self.errors,
            "rejected": self.rejected,
        }


class PromptIntake:
    """Applies the filters to chunks of valid rows and stores what passes.

    Call within one transaction that holds the project row locked, so that concurrent intakes
    into one project cannot both pass the duplicate and cap checks.
    """

    def __init__(
        self,
        *,
        project: Project,
        created_by: User | None = None,
        import_job: Any = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        self.project = project
        self.created_by = created_by
        self.import_job = import_job
        self.extra = extra or {}
        self.report = IntakeReport()
        self._keys: set[str] = set()
        self._customer_count: dict[str, int] = {}
        self._customer_split: dict[str, str] = {}

    def add(self, rows: list[PromptRow]) -> list[Prompt]:
        project, report = self.project, self.report
        fresh: list[tuple[PromptRow, str, int]] = []
        for row in rows:
            tokens = estimate_tokens(row.text)
            if tokens > project.max_prompt_tokens or len(row.text) > project.max_prompt_chars:
                report.too_long += 1
                report.reject(
                    row.line,
                    f"longer than {project.max_prompt_tokens} tokens "
                    f"(about {tokens}) or {project.max_prompt_chars} characters",
                )
                continue
            key = dedup_key(row.text, project.dedup_prefix_chars)
            if key in self._keys:
                report.duplicates_in_file += 1
                report.reject(row.line, "duplicate of an earlier row (same long prefix)")
                continue
            self._keys.add(key)
            fresh.append((row, key, tokens))
        stored = set(
            Prompt.objects.filter(
                project=project, dedup_key__in=[k for _, k, _ in fresh]
            ).values_list("dedup_key", flat=True)
        )
        self._load_customers({row.customer_id for row, key, _ in fresh if key not in stored})
        prompts: list[Prompt] = []
        for row, key, tokens in fresh:
            if key in stored:
                report.duplicates_existing += 1
                report.reject(row.line, "duplicate of a stored prompt (same long prefix)")
                continue
            prompt = self._admit(row, key, tokens)
            if prompt is not None:
                prompts.append(prompt)
        Prompt.objects.bulk_create(prompts, batch_size=1000)
        report.imported += len(prompts)
        for prompt in prompts:
            report.per_split[prompt.split] += 1
            report.per_source[prompt.source] += 1
        return prompts

    def _admit(self, row: PromptRow, key: str, tokens: int) -> Prompt | None:
        project, report = self.project, self.report
        split = self._customer_split[row.customer_id]
        pii_kinds = detect_pii(row.text)
        if pii_kinds:
            report.pii_flagged += 1
            if split == "train" and project.remove_pii_from_train:
                report.pii_removed += 1
                report.reject(
                    row.line, f"personal data ({', '.join(pii_kinds)}) in the train split"
                )
                return None
        if self._customer_count[row.customer_id] >= project.max_prompts_per_customer:
            report.over_cap += 1
            report.reject(
                row.line,
                f"customer {row.customer_id!r} already has "
                f"{project.max_prompts_per_customer} prompts",
            )
            return None
        self._customer_count[row.customer_id] += 1
        return Prompt(
            project=project,
            text=row.text,
            messages=row.messages,
            source=row.source,
            customer_id=row.customer_id,
            external_id=row.external_id,
            category=row.category,
            split=split,
            pii=bool(pii_kinds),
            pii_kinds=pii_kinds,
            token_count=tokens,
            dedup_key=key,
            metadata=row.metadata,
            created_by=self.created_by,
            import_job=self.import_job,
            **self.extra,
        )

    def _load_customers(self, customers: set[str]) -> None:
        """Counts and splits for customers not seen yet in this intake: three queries per chunk."""
        new = customers - self._customer_count.keys()
        if not new:
            return
        counts = dict(
            Prompt.objects.filter(project=self.project, customer_id__in=new)
            .values("customer_id")
            .annotate(n=Count("id"))
            .values_list("customer_id", "n")
        )
        for customer in new:
            self._customer_count[customer] = counts.get(customer, 0)
        ratios = self.project.split_ratios
        CustomerSplit.objects.bulk_create(
            [
                CustomerSplit(
                    project=self.project,
                    customer_id=customer,
                    split=split_for_customer(
                        project_id=self.project.pk, customer_id=customer, ratios=ratios
                    ),
                )
                for customer in new
            ],
            ignore_conflicts=True,
        )
        self._customer_split.update(
            CustomerSplit.objects.filter(project=self.project, customer_id__in=new).values_list(
                "customer_id", "split"
            )
        )
