"""Dataset exports through the service (the management command's path): every kind and format
round-trips through `datasets`, pair counts, filters, consensus, manifests, failures."""

import gzip
import hashlib
import json
from datetime import timedelta
from itertools import combinations
from pathlib import Path

import pytest
from datasets import load_dataset
from django.core.management import call_command
from django.utils import timezone

from annotations.errors import ApplicationError
from annotations.exports import ranking_rows
from annotations.exports import rows as export_rows
from annotations.models import DatasetExport, Prompt
from annotations.roles import Role
from annotations.services.exports import export_create, export_delete, export_run, exports_root
from tests.factories import CUSTOMERS, RankingFactory, UserFactory
from tests.helpers import run_export

KINDS = ["sft", "rm_pairs", "rm_rankings", "ppo_prompts", "evaluation"]
FORMATS = {"jsonl": "json", "jsonl.gz": "json", "parquet": "parquet"}


def read_rows(export) -> list[dict]:
    rows = []
    for info in export.manifest["files"]:
        path = Path(export.directory) / info["name"]
        if export.format == "parquet":
            import pyarrow.parquet as pq

            rows += pq.read_table(path).to_pylist()
        else:
            opener = gzip.open if export.format == "jsonl.gz" else open
            with opener(path, "rt") as handle:
                rows += [json.loads(line) for line in handle]
    return rows


def expected_pairs(groups) -> int:
    k = sum(len(g) for g in groups)
    return k * (k - 1) // 2 - sum(len(g) * (len(g) - 1) // 2 for g in groups)


@pytest.mark.django_db
@pytest.mark.parametrize("fmt", list(FORMATS))
@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_and_format_round_trips_through_datasets(labeled_data, kind, fmt, tmp_path):
    export = run_export(labeled_data.project, kind=kind, format=fmt)
    assert export.ready and export.version == 1 and export.row_count > 0
    files = {
        info["split"]: str(Path(export.directory) / info["name"])
        for info in export.manifest["files"]
    }
    loaded = load_dataset(FORMATS[fmt], data_files=files, cache_dir=str(tmp_path / "hf"))
    whole = load_dataset(export.directory, cache_dir=str(tmp_path / "hf2"))
    assert sorted(loaded) == sorted(whole) == sorted(files)
    ours = read_rows(export)
    assert sum(len(loaded[s]) for s in loaded) == len(ours) == export.row_count
    for split in loaded:
        assert set(loaded[split]["split"]) == {split}
        assert loaded[split].column_names == export.manifest["fields"]
        assert loaded[split].to_list() == whole[split].to_list()
    first = loaded[sorted(loaded)[-1]][0]
    prompt = Prompt.objects.get(pk=first["prompt_id"])
    assert (first["split"], first["source"]) == (prompt.split, prompt.source)
    text_field = {"sft": "completion", "rm_pairs": "chosen", "rm_rankings": "completions"}
    assert first["prompt"] == prompt.text and (kind not in text_field or first[text_field[kind]])
    if kind == "evaluation":
        assert sorted(loaded) == ["test"]  # held out by default


@pytest.mark.django_db
def test_pair_count_is_choose_k_2_minus_ties_and_pairs_follow_the_ranking(labeled_data):
    export = run_export(labeled_data.project, kind="rm_pairs")
    rankings = labeled_data.submitted()
    assert export.row_count == sum(expected_pairs(r.groups) for r in rankings)
    assert export.row_count == 6 + 8 + 6 + 15 + 6 + 6 + 36 + 6 + 6 + 15
    rows = read_rows(export)
    tied = labeled_data.rankings[1]
    by_ranking = [r for r in rows if r["ranking_id"] == tied.pk]
    assert len(by_ranking) == 10 - 1 - 1  # C(5,2) minus the two tied pairs
    ranks = {pk: i for i, group in enumerate(tied.groups) for pk in group}
    assert all(ranks[r["chosen_id"]] < ranks[r["rejected_id"]] for r in by_ranking)
    texts = dict(labeled_data.tasks[1].completions.values_list("pk", "text"))
    assert all(texts[r["chosen_id"]] == r["chosen"] for r in by_ranking)


@pytest.mark.django_db
def test_rankings_rows_index_completions_best_group_first(labeled_data):
    export = run_export(labeled_data.project, kind="rm_rankings")
    rows = {r["ranking_id"]: r for r in read_rows(export)}
    assert len(rows) == len(labeled_data.submitted())
    tied = rows[labeled_data.rankings[1].pk]
    assert tied["rank_groups"] == [[0, 1], [2, 3], [4]]
    assert tied["completions"] == list(
        labeled_data.tasks[1].completions.order_by("position").values_list("text", flat=True)
    )
    reversed_row = rows[labeled_data.rankings[-2].pk]
    assert reversed_row["rank_groups"] == [[3], [2], [1], [0]]
    assert rows[labeled_data.rankings[2].pk]["none_acceptable"] is True


@pytest.mark.django_db
def test_consensus_gives_one_ranked_pairs_row_per_comparison(labeled_data):
    task = labeled_data.tasks[5]
    RankingFactory(task=task, labeler=labeled_data.second)  # agrees with the first labeler
    RankingFactory(task=task, labeler=UserFactory(roles=[Role.LABELER]), order=[[3], [2], [1], [0]])
    every = [
        r
        for r in read_rows(run_export(labeled_data.project, kind="rm_rankings"))
        if r["comparison_id"] == task.pk
    ]
    assert len(every) == 3 and {r["labeler_count"] for r in every} == {1}
    consensus = run_export(labeled_data.project, kind="rm_rankings", consensus=True)
    rows = [r for r in read_rows(consensus) if r["comparison_id"] == task.pk]
    assert len(rows) == 1
    assert rows[0]["rank_groups"] == [[0], [1], [2], [3]]  # the majority's order
    assert (rows[0]["labeler_count"], rows[0]["ranking_id"], rows[0]["labeler_id"]) == (
        3,
        None,
        None,
    )
    assert consensus.version == 2
    pairs = read_rows(run_export(labeled_data.project, kind="rm_pairs", consensus=True))
    assert len([p for p in pairs if p["comparison_id"] == task.pk]) == 6
    assert consensus.row_count == len({r.task_id for r in labeled_data.submitted()})


@pytest.mark.django_db
def test_each_filter_changes_the_rows_as_expected(labeled_data):
    project = labeled_data.project
    everything = read_rows(run_export(project, kind="rm_pairs"))
    valid = read_rows(run_export(project, kind="rm_pairs", splits=["valid"]))
    assert valid and {r["split"] for r in valid} == {"valid"}
    assert len(valid) == len([r for r in everything if r["split"] == "valid"])
    labeler_rows = read_rows(run_export(project, kind="rm_pairs", sources=["labeler"]))
    assert labeler_rows and {r["source"] for r in labeler_rows} == {"labeler"}
    assert len(labeler_rows) < len(everything)
    second = read_rows(run_export(project, kind="rm_pairs", labelers=[labeled_data.second.pk]))
    assert second and {r["labeler_id"] for r in second} == {labeled_data.second.pk}
    recent = read_rows(
        run_export(
            project, kind="rm_pairs", date_from=str(timezone.now().date() - timedelta(days=1))
        )
    )
    assert len(recent) == len(everything) - 15  # the month-old ranking of a K=6 task
    old = read_rows(
        run_export(
            project, kind="rm_pairs", date_to=str(timezone.now().date() - timedelta(days=10))
        )
    )
    assert len(old) == 15
    kept = read_rows(run_export(project, kind="rm_pairs", skip_none_acceptable=True))
    assert len(kept) == len(everything) - 6
    assert labeled_data.rankings[2].pk not in {r["ranking_id"] for r in kept}
    accepted = read_rows(run_export(project, kind="sft"))
    submitted_too = read_rows(run_export(project, kind="sft", accepted_only=False))
    assert len(accepted) == 12 and len(submitted_too) == 13
    chat = read_rows(run_export(project, kind="sft", chat=True))
    assert chat[0]["messages"][-1]["role"] == "assistant" and "prompt" not in chat[0]
    customers = read_rows(run_export(project, kind="ppo_prompts", sources=["customer"]))
    assert len(customers) == 8 and {r["source"] for r in customers} == {"customer"}
    written = read_rows(run_export(project, kind="ppo_prompts", labelers=[labeled_data.first.pk]))
    assert {r["source"] for r in written} == {"labeler"} and len(written) == 4
    with pytest.raises(ApplicationError, match="splits"):
        export_create(
            project=project, user=None, kind="sft", format="jsonl", filters={"splits": ["nope"]}
        )


@pytest.mark.django_db
@pytest.mark.parametrize("kind", KINDS)
def test_a_customer_never_crosses_splits(labeled_data, kind):
    rows = read_rows(run_export(labeled_data.project, kind=kind, splits=["train", "valid", "test"]))
    customer_of = dict(Prompt.objects.values_list("pk", "customer_id"))
    splits_of: dict[str, set[str]] = {}
    for row in rows:
        if row["prompt_id"] is not None:
            splits_of.setdefault(customer_of[row["prompt_id"]], set()).add(row["split"])
    assert splits_of and all(len(s) == 1 for s in splits_of.values()), splits_of
    assert {c: s.pop() for c, s in splits_of.items()} == {
        c: split for c, (split, _) in CUSTOMERS.items() if c in splits_of
    }


@pytest.mark.django_db
def test_manifest_checksums_match_and_card_has_tables_6_and_7(labeled_data, admin_user):
    export = run_export(labeled_data.project, admin_user, kind="sft", format="jsonl.gz")
    folder = Path(export.directory)
    assert sorted(p.name for p in folder.iterdir()) == [
        "README.md", "manifest.json", "test.jsonl.gz", "train.jsonl.gz", "valid.jsonl.gz",
    ]  # fmt: skip
    on_disk = json.loads((folder / "manifest.json").read_text())
    assert on_disk == export.manifest
    for info in export.manifest["files"]:
        body = (folder / info["name"]).read_bytes()
        assert hashlib.sha256(body).hexdigest() == info["sha256"]
        assert len(body) == info["bytes"]
    counts = export.manifest["counts"]
    assert counts["prompts"] == {
        "test": {"customer": 2},
        "train": {"customer": 4, "labeler": 2},
        "valid": {"customer": 2, "labeler": 2},
    }
    assert export.manifest["created_by"] == admin_user.username
    assert export.manifest["code_version"] and export.manifest["label_schema_versions"] == [1]
    assert export.manifest["annotation_rates"]["train"] == {
        "annotated": 2, "rates": {"closed_domain": 0.5, "pii": 0.5},
    }  # fmt: skip
    card = (folder / "README.md").read_text()
    assert card.startswith("---\npretty_name:") and "- split: train" in card
    assert "| SFT | train | 2 | 4 |" in card and "| SFT | test | 0 | 2 |" in card
    assert "| Closed domain | 0.0% | 50.0% | 0.0% |" in card


@pytest.mark.django_db
def test_versions_count_up_per_kind_and_snapshots_are_separate_folders(labeled_data):
    first = run_export(labeled_data.project, kind="rm_pairs")
    second = run_export(labeled_data.project, kind="rm_pairs", splits=["train"])
    other = run_export(labeled_data.project, kind="sft")
    assert (first.version, second.version, other.version) == (1, 2, 1)
    assert len({first.directory, second.directory, other.directory}) == 3
    assert first.manifest["counts"]["total_rows"] > second.manifest["counts"]["total_rows"]
    assert Path(first.directory, "train.jsonl").exists()


@pytest.mark.django_db
def test_an_error_mid_write_leaves_no_file_and_nothing_ready(labeled_data, monkeypatch):
    monkeypatch.setattr(export_rows, "CHUNK_SIZE", 2)
    monkeypatch.setattr("annotations.services.exports.CHUNK_SIZE", 2)
    original = ranking_rows._pair_rows
    calls = {"n": 0}

    def failing(rows, answers, completions):
        calls["n"] += 1
        if calls["n"] == 4:
            raise RuntimeError("disk full")
        original(rows, answers, completions)

    monkeypatch.setattr(ranking_rows, "_pair_rows", failing)
    export = export_create(
        project=labeled_data.project, user=None, kind="rm_pairs", format="jsonl", filters={}
    )
    with pytest.raises(RuntimeError, match="disk full"):
        export_run(job_id=export.job_id)
    export.refresh_from_db()
    assert not export.ready and export.directory == ""
    assert not DatasetExport.objects.filter(ready=True).exists()
    assert [p for p in exports_root().rglob("*") if p.is_file()] == []


@pytest.mark.django_db
def test_cancel_mid_way_stops_and_removes_the_staging_folder(labeled_data, monkeypatch):
    from annotations.services import exports as service
    from annotations.services.jobs import job_progress

    monkeypatch.setattr(service, "CHUNK_SIZE", 2)
    seen = {"calls": 0}

    def progress_then_cancel(**kwargs):
        seen["calls"] += 1
        staged = [p for p in exports_root().rglob("*.jsonl")]
        if seen["calls"] == 3:
            assert staged, "a file is being written"
            seen["staged"] = staged
            return True
        return job_progress(**kwargs)

    monkeypatch.setattr(service, "job_progress", progress_then_cancel)
    export = export_create(
        project=labeled_data.project, user=None, kind="rm_pairs", format="jsonl", filters={}
    )
    assert export_run(job_id=export.job_id) is None
    export.refresh_from_db()
    assert export.job.state == "cancelled" and not export.ready
    assert not any(p.exists() for p in seen["staged"])
    assert [p for p in exports_root().rglob("*") if p.is_file()] == []


@pytest.mark.django_db
def test_delete_removes_folder_and_row(labeled_data, django_capture_on_commit_callbacks):
    export = run_export(labeled_data.project, kind="ppo_prompts")
    folder = Path(export.directory)
    assert folder.is_dir()
    with django_capture_on_commit_callbacks(execute=True):
        export_delete(export=export)
    assert not folder.exists() and not DatasetExport.objects.filter(pk=export.pk).exists()


@pytest.mark.django_db
def test_management_command_exports_synchronously_and_prints_the_summary(labeled_data, capsys):
    call_command(
        "export_dataset", "--project", labeled_data.project.slug, "--kind", "rm_pairs",
        "--format", "parquet", "--split", "train", "--source", "customer",
    )  # fmt: skip
    out = capsys.readouterr().out
    export = DatasetExport.objects.get()
    assert export.ready and export.format == "parquet" and export.job.state == "succeeded"
    assert f"v{export.version}" in out and f"{export.row_count} rows" in out
    assert "train.parquet" in out and export.manifest["files"][0]["sha256"] in out
    assert {r["split"] for r in read_rows(export)} == {"train"}
    assert {r["source"] for r in read_rows(export)} == {"customer"}


def test_pairs_helper_counts_like_ranking_pairs():
    from annotations.domain.ranking import ranking_pairs

    for groups in ([[1], [2], [3]], [[1, 2], [3]], [[1, 2, 3, 4]], [[1], [2, 3], [4, 5, 6]]):
        assert expected_pairs(groups) == len(ranking_pairs(groups))
        items = [i for g in groups for i in g]
        assert len(list(combinations(items, 2))) >= expected_pairs(groups)
