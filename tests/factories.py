"""Test data. Where an invariant matters the factories go through the app's services: projects
through project_create (label schema version 1), prompts through the intake pipeline (checks,
dedup, split by customer, PII, caps), work items through work_items_create, comparisons through
comparison_create (K completions and their ranking item). Labels (rankings, demonstrations,
annotations) and job rows are stored as they are, with what each test sets."""

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import factory
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from annotations.intake.pipeline import PromptIntake
from annotations.intake.rows import PromptRow
from annotations.models import (
    ComparisonTask,
    Conversation,
    CustomerSplit,
    DatasetExport,
    Demonstration,
    Job,
    JobMetric,
    ModelVersion,
    Project,
    Prompt,
    PromptAnnotation,
    Ranking,
    WorkItem,
)
from annotations.roles import Role, user_set_roles
from annotations.services.comparisons import comparison_create
from annotations.services.projects import project_create
from annotations.services.prompts import prompt_create
from annotations.services.queue import work_items_create
from models_service.training.synthetic import synthetic_rankings

PASSWORD = "correct-horse-battery"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def roles(self, create: bool, extracted: list[Role] | None, **kwargs: object) -> None:
        self.save()
        if extracted:
            user_set_roles(user=self, roles=list(extracted))


class ProjectFactory(factory.django.DjangoModelFactory):
    """A project through project_create: checked settings and label schema version 1."""

    class Meta:
        model = Project

    name = factory.Sequence(lambda n: f"Project {n}")
    slug = factory.Sequence(lambda n: f"project-{n}")
    created_by = None  # of the first schema version

    @classmethod
    def _create(cls, model_class: type, *args: Any, created_by: Any = None, **data: Any) -> Any:
        return project_create(user=created_by, data=data)


class PromptFactory(factory.django.DjangoModelFactory):
    """A prompt through prompt_create's checks and filters. `create_batch` sends the whole batch
    through one intake, as an import does (one insert), and fails if the intake refuses any."""

    class Meta:
        model = Prompt

    project = factory.SubFactory(ProjectFactory)
    text = factory.Sequence(lambda n: f"Prompt {n}")
    customer_id = factory.Sequence(lambda n: f"customer-{n}")
    source = "customer"
    category = ""
    created_by = None

    @classmethod
    def _create(cls, model_class: type, *args: Any, created_by: Any = None, **fields: Any) -> Any:
        return prompt_create(user=created_by, **fields)

    @classmethod
    def create_batch(cls, size: int, **kwargs: Any) -> list[Prompt]:
        project = kwargs.pop("project", None) or ProjectFactory()
        created_by = kwargs.pop("created_by", None)
        rows = []
        for line in range(1, size + 1):
            row = cls.stub(project=project, **kwargs)
            rows.append(
                PromptRow(
                    line=line,
                    text=row.text,
                    customer_id=row.customer_id,
                    source=row.source,
                    category=row.category,
                )
            )
        with transaction.atomic():
            locked = Project.objects.select_for_update().get(pk=project.pk)
            intake = PromptIntake(project=locked, created_by=created_by)
            prompts = intake.add(rows)
        if len(prompts) != size:
            raise ValueError(f"the intake refused prompts: {intake.report.rejected[:3]}")
        return prompts


class WorkItemFactory(factory.django.DjangoModelFactory):
    """Queued work through work_items_create: one item per prompt (a fresh one unless given), or
    a free item when `prompt` is None (prompt writing). `create_batch` queues that many fresh
    prompts at once; `prompt__<field>` goes to PromptFactory."""

    class Meta:
        model = WorkItem

    project = factory.SubFactory(ProjectFactory)
    kind = "demonstration"
    prompt = factory.SubFactory(PromptFactory, project=factory.SelfAttribute("..project"))
    required_labels = None  # the project's labelers per item
    priority = 0

    @classmethod
    def _create(cls, model_class: type, *args: Any, prompt: Any, **fields: Any) -> Any:
        if prompt is None:
            [item] = work_items_create(count=1, **fields)
        else:
            [item] = work_items_create(prompts=[prompt], **fields)
        return item

    @classmethod
    def create_batch(cls, size: int, **kwargs: Any) -> list[WorkItem]:
        project = kwargs.pop("project", None) or ProjectFactory()
        prompt_fields = {
            key.removeprefix("prompt__"): kwargs.pop(key)
            for key in list(kwargs)
            if key.startswith("prompt__")
        }
        prompts = PromptFactory.create_batch(size, project=project, **prompt_fields)
        kwargs.setdefault("kind", "demonstration")
        return work_items_create(project=project, prompts=prompts, **kwargs)


def _outputs(texts: list[str] | None, k: int) -> list[dict[str, str]]:
    texts = texts or [f"Output number {i}: waves fold into foam." for i in range(k)]
    return [{"text": text, "model_name": f"policy-{i % 2}"} for i, text in enumerate(texts)]


class ComparisonTaskFactory(factory.django.DjangoModelFactory):
    """K completions of a prompt through comparison_create, which checks K against the project
    and queues the ranking item: `k` outputs (default 4), or one per text of `texts`."""

    class Meta:
        model = ComparisonTask

    class Params:
        k = 4
        texts = None

    project = factory.SubFactory(ProjectFactory)
    prompt = factory.SubFactory(PromptFactory, project=factory.SelfAttribute("..project"))
    outputs = factory.LazyAttribute(lambda o: _outputs(o.texts, o.k))
    job = None

    @classmethod
    def _create(cls, model_class: type, *args: Any, **fields: Any) -> Any:
        return comparison_create(**fields)


def completion_ids(task: ComparisonTask) -> list[int]:
    """The task's completions in position order (output A first)."""
    return list(task.completions.order_by("position").values_list("pk", flat=True))


def _groups(task: ComparisonTask, order: list[list[int]] | None) -> list[list[int]]:
    ids = completion_ids(task)
    if order is None:
        return [[pk] for pk in ids]
    return [[ids[position] for position in group] for group in order]


class RankingFactory(factory.django.DjangoModelFactory):
    """A labeler's ranking as stored (no lease, no checks). `order` ranks the outputs by their
    position, best group first, ties sharing a group: [[0, 1], [2], [3]]; by default one output
    per rank in position order."""

    class Meta:
        model = Ranking

    class Params:
        order = None

    task = factory.SubFactory(ComparisonTaskFactory)
    labeler = factory.SubFactory(UserFactory, roles=[Role.LABELER])
    schema_version = 1
    state = "submitted"
    groups = factory.LazyAttribute(lambda o: _groups(o.task, o.order))
    submitted_at = factory.LazyAttribute(
        lambda o: timezone.now() if o.state == "submitted" else None
    )


class DemonstrationFactory(factory.django.DjangoModelFactory):
    """A labeler's demonstration as stored, submitted unless `state` says otherwise."""

    class Meta:
        model = Demonstration

    prompt = factory.SubFactory(PromptFactory)
    labeler = factory.SubFactory(UserFactory, roles=[Role.LABELER])
    text = factory.Sequence(lambda n: f"Demonstration {n}")
    state = "submitted"
    submitted_at = factory.LazyAttribute(lambda o: None if o.state == "draft" else timezone.now())


class PromptAnnotationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PromptAnnotation

    prompt = factory.SubFactory(PromptFactory)
    labeler = factory.SubFactory(UserFactory, roles=[Role.LABELER])
    schema_version = 1
    data = factory.LazyFunction(lambda: {"category": "open_qa", "pii": False})


class ConversationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Conversation

    project = factory.SubFactory(ProjectFactory)
    labeler = factory.SubFactory(UserFactory, roles=[Role.LABELER])


class ModelVersionFactory(factory.django.DjangoModelFactory):
    """A model version row only: nothing is written to the service's registry."""

    class Meta:
        model = ModelVersion

    name = factory.Sequence(lambda n: f"model-{n}")


class JobFactory(factory.django.DjangoModelFactory):
    """A job row as a worker would have left it (no task is queued)."""

    class Meta:
        model = Job

    kind = "import_prompts"
    project = factory.SubFactory(ProjectFactory)
    created_by = None
    state = "queued"


class JobMetricFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = JobMetric

    job = factory.SubFactory(JobFactory, kind="reward")
    step = factory.Sequence(lambda n: n + 1)
    values = factory.LazyFunction(dict)


class DatasetExportFactory(factory.django.DjangoModelFactory):
    """A finished snapshot made of `splits` ({split: rows}) written as JSONL under MEDIA_ROOT,
    without an export run: training tests feed it synthetic rows. Version: the next one."""

    class Meta:
        model = DatasetExport

    project = factory.SubFactory(ProjectFactory)
    kind = "sft"
    format = "jsonl"
    version = factory.LazyAttribute(
        lambda o: DatasetExport.objects.filter(project=o.project, kind=o.kind).count() + 1
    )
    ready = True
    splits = factory.LazyFunction(dict)

    @classmethod
    def _create(cls, model_class: type, *args: Any, splits: dict, **fields: Any) -> Any:
        name = f"{fields['project'].slug}-{fields['kind']}-v{fields['version']}"
        directory = Path(settings.MEDIA_ROOT) / "snapshots" / name
        directory.mkdir(parents=True)
        for split, rows in splits.items():
            with (directory / f"{split}.jsonl").open("w") as out:
                out.writelines(json.dumps(row) + "\n" for row in rows)
        fields.update(directory=str(directory), row_count=sum(map(len, splits.values())))
        return super()._create(model_class, *args, **fields)


# A small labeled project for exports: customers in every split, from both sources.
CUSTOMERS = {
    "cust-north": ("train", "customer"),
    "cust-east": ("train", "customer"),
    "cust-south": ("valid", "customer"),
    "cust-west": ("test", "customer"),
    "writer-a": ("train", "labeler"),
    "writer-b": ("valid", "labeler"),
}
WORDS = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india"]


class LabeledData:
    """Two prompts per customer of CUSTOMERS, each with an accepted demonstration (and one more
    submitted by a second labeler); eight comparisons of K = 4..9 ranked by the first labeler
    (one with two ties, one none-acceptable); the second labeler's rankings: one reversed, one a
    month old, one draft; two prompt annotations."""

    def __init__(self, project: Project) -> None:
        self.project = project
        self.first = UserFactory(roles=[Role.LABELER])
        self.second = UserFactory(roles=[Role.LABELER])
        CustomerSplit.objects.bulk_create(
            CustomerSplit(project=project, customer_id=c, split=s)
            for c, (s, _) in CUSTOMERS.items()
        )
        self.prompts: list[Prompt] = [
            PromptFactory(
                project=project,
                created_by=self.first if source == "labeler" else None,
                text=f"Tell a story about {WORDS[index]} number {WORDS[copy]}",
                customer_id=customer,
                source=source,
                category="generation" if copy == 0 else "open_qa",
            )
            for index, (customer, (_, source)) in enumerate(CUSTOMERS.items())
            for copy in range(2)
        ]
        for prompt in self.prompts:
            DemonstrationFactory(
                prompt=prompt,
                labeler=self.first,
                text=f"Once upon a time: {prompt.text}",
                state="accepted",
            )
        DemonstrationFactory(prompt=self.prompts[0], labeler=self.second, text="Draft-ish")
        self.tasks = [
            ComparisonTaskFactory(
                project=project,
                prompt=prompt,
                texts=[f"{prompt.text} -> answer {WORDS[i]}" for i in range(k)],
            )
            for k, prompt in zip([4, 5, 4, 6, 4, 4, 9, 4], self.ranked_prompts(), strict=True)
        ]
        self.rankings: list[Ranking] = [
            RankingFactory(
                task=task,
                labeler=self.first,
                order=[[0, 1], [2, 3], [4]] if number == 1 else None,  # two ties
                none_acceptable=number == 2,
            )
            for number, task in enumerate(self.tasks)
        ]
        self.rankings.append(
            RankingFactory(task=self.tasks[0], labeler=self.second, order=[[3], [2], [1], [0]])
        )
        old = RankingFactory(
            task=self.tasks[3],
            labeler=self.second,
            submitted_at=timezone.now() - timedelta(days=30),
        )
        self.rankings.append(old)
        RankingFactory(task=self.tasks[4], labeler=self.second, order=[[0, 1, 2, 3]], state="draft")
        PromptAnnotationFactory(
            prompt=self.prompts[0],
            labeler=self.first,
            data={"category": "generation", "flags": {"closed_domain": True}, "pii": False},
        )
        PromptAnnotationFactory(
            prompt=self.prompts[1],
            labeler=self.first,
            data={"category": "open_qa", "flags": {"closed_domain": False}, "pii": True},
        )

    def ranked_prompts(self) -> list[Prompt]:
        """Prompts of every split and both sources (customers first, then labeler-written)."""
        return [self.prompts[i] for i in (0, 2, 4, 6, 8, 10, 1, 9)]

    def submitted(self) -> list[Ranking]:
        return list(Ranking.objects.filter(state="submitted"))


def rankings_snapshot(project: Project, *, train: int = 48, valid: int = 16) -> DatasetExport:
    """A finished K-way rankings snapshot of synthetic rankings (K=4)."""
    return DatasetExportFactory(
        project=project,
        kind="rm_rankings",
        splits={
            "train": synthetic_rankings(train, k=4, seed=1),
            "valid": synthetic_rankings(valid, k=4, seed=2),
        },
    )


def sft_snapshot(project: Project, rows: list[dict]) -> DatasetExport:
    """A finished SFT snapshot of these rows."""
    return DatasetExportFactory(project=project, kind="sft", splits={"train": rows})
