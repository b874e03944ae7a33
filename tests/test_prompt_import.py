"""Every intake rule, through the import service, on PostgreSQL."""

import gzip
import json
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from annotations.errors import ApplicationError
from annotations.models import CustomerSplit, Prompt
from annotations.services.projects import project_update
from annotations.services.prompts import prompt_create, prompt_import_file
from tests.helpers import write_jsonl

pytestmark = pytest.mark.django_db


def run(project, path: Path, *, fmt: str = "jsonl", skip: bool = False) -> dict:
    return prompt_import_file(project=project, path=path, fmt=fmt, skip_invalid=skip)


def rows(n: int, *, customer: str = "acme", start: int = 0) -> list[dict]:
    return [
        {"text": f"Prompt number {i}: explain topic {i}.", "customer_id": customer}
        for i in range(start, start + n)
    ]


def test_imports_valid_rows_with_their_fields(project, tmp_path):
    path = write_jsonl(
        tmp_path / "p.jsonl",
        [
            {
                "text": "Summarize the plot of Hamlet.",
                "customer_id": "c1",
                "category": "summarization",
                "id": "ext-1",
                "metadata": {"lang": "en"},
            },
            {"prompt": "Name three rivers.", "customer_id": 42, "source": "labeler"},
        ],
    )
    report = run(project, path)
    assert report["imported"] == 2
    assert report["invalid"] == 0
    hamlet = Prompt.objects.get(project=project, external_id="ext-1")
    assert (hamlet.category, hamlet.metadata, hamlet.source) == (
        "summarization",
        {"lang": "en"},
        "customer",
    )
    rivers = Prompt.objects.get(project=project, text="Name three rivers.")
    assert (rivers.customer_id, rivers.source) == ("42", "labeler")
    assert rivers.token_count > 0


def test_long_common_prefix_duplicates_dropped_in_file_and_against_database(project, tmp_path):
    prefix = "Please write a detailed essay about the causes of the first world war, " * 2
    first = write_jsonl(
        tmp_path / "a.jsonl",
        [
            {"text": prefix + "focusing on alliances.", "customer_id": "a"},
            {"text": prefix.upper() + "focusing on nationalism!", "customer_id": "b"},
            {"text": "A different prompt entirely.", "customer_id": "c"},
        ],
    )
    report = run(project, first)
    assert (report["imported"], report["duplicates_in_file"]) == (2, 1)
    second = write_jsonl(
        tmp_path / "b.jsonl",
        [
            {"text": prefix + "focusing on economics.", "customer_id": "d"},
            {"text": "a different prompt, entirely", "customer_id": "e"},
            {"text": "Something new.", "customer_id": "f"},
        ],
    )
    report = run(project, second)
    assert (report["imported"], report["duplicates_existing"]) == (1, 2)
    assert Prompt.objects.filter(project=project).count() == 3


def test_dedup_threshold_is_configurable(project, tmp_path):
    project_update(project=project, data={"dedup_prefix_chars": 10})
    path = write_jsonl(
        tmp_path / "p.jsonl",
        [
            {"text": "Tell me a joke about cats", "customer_id": "a"},
            {"text": "Tell me a joke about dogs", "customer_id": "b"},
        ],
    )
    assert run(project, path)["duplicates_in_file"] == 1


def test_cap_per_customer_counts_stored_prompts(project, tmp_path):
    project_update(project=project, data={"max_prompts_per_customer": 5})
    assert run(project, write_jsonl(tmp_path / "a.jsonl", rows(3)))["imported"] == 3
    report = run(
        project,
        write_jsonl(tmp_path / "b.jsonl", rows(4, start=10) + rows(2, customer="x", start=20)),
    )
    assert (report["imported"], report["over_cap"]) == (4, 2)
    assert Prompt.objects.filter(project=project, customer_id="acme").count() == 5


def test_split_by_customer_is_stable_across_imports(project, tmp_path):
    customers = [f"cust-{i}" for i in range(60)]
    first = [{"text": f"First batch prompt for {c}", "customer_id": c} for c in customers]
    second = [{"text": f"Second batch prompt for {c}", "customer_id": c} for c in customers]
    run(project, write_jsonl(tmp_path / "a.jsonl", first))
    project_update(
        project=project, data={"split_train": 0.2, "split_valid": 0.4, "split_test": 0.4}
    )
    run(project, write_jsonl(tmp_path / "b.jsonl", second))
    splits_per_customer = {}
    for customer, split in Prompt.objects.filter(project=project).values_list(
        "customer_id", "split"
    ):
        splits_per_customer.setdefault(customer, set()).add(split)
    assert len(splits_per_customer) == 60
    assert all(len(s) == 1 for s in splits_per_customer.values()), "a customer is in two splits"
    assert {next(iter(s)) for s in splits_per_customer.values()} == {"train", "valid", "test"}
    assert CustomerSplit.objects.filter(project=project).count() == 60


def test_pii_flagged_and_kept_out_of_train(project, tmp_path):
    project_update(
        project=project, data={"split_train": 1.0, "split_valid": 0.0, "split_test": 0.0}
    )
    path = write_jsonl(
        tmp_path / "p.jsonl",
        [
            {"text": "Email bob@example.org about the invoice", "customer_id": "a"},
            {"text": "What is the capital of France?", "customer_id": "a"},
        ],
    )
    report = run(project, path)
    assert (report["pii_flagged"], report["pii_removed_from_train"], report["imported"]) == (
        1,
        1,
        1,
    )
    project_update(project=project, data={"remove_pii_from_train": False})
    path = write_jsonl(
        tmp_path / "q.jsonl", [{"text": "Call me on +44 20 7946 0958", "customer_id": "b"}]
    )
    run(project, path)
    flagged = Prompt.objects.get(project=project, pii=True)
    assert flagged.pii_kinds == ["phone"]
    assert flagged.split == "train"


def test_malformed_json_line_named_and_nothing_imported(project, tmp_path):
    path = write_jsonl(
        tmp_path / "p.jsonl",
        [rows(1)[0], '{"text": "broken", customer_id: 1}', rows(1, start=5)[0]],
    )
    with pytest.raises(ApplicationError) as caught:
        run(project, path)
    errors = caught.value.details["report"]["errors"]
    assert errors[0]["line"] == 2
    assert "Line 2 is not valid JSON" in errors[0]["message"]
    assert Prompt.objects.filter(project=project).count() == 0


def test_skip_invalid_imports_the_rest(project, tmp_path):
    path = write_jsonl(tmp_path / "p.jsonl", [rows(1)[0], "[1, 2]", rows(1, start=5)[0]])
    report = run(project, path, skip=True)
    assert (report["imported"], report["invalid"]) == (2, 1)
    assert "must be a JSON object" in report["errors"][0]["message"]


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"customer_id": "a"}, "'text' is missing"),
        ({"text": "hi"}, "'customer_id' is missing"),
        ({"text": 123, "customer_id": "a"}, "'text' must be a string, got int"),
        ({"text": "hi", "customer_id": ["a"]}, "'customer_id' must be a string, got list"),
        (
            {"text": "hi", "customer_id": "a", "category": "poetry"},
            "'category' 'poetry' is not one of",
        ),
        (
            {"text": "hi", "customer_id": "a", "source": "robot"},
            "'source' must be 'customer' or 'labeler'",
        ),
        ({"text": "   ", "customer_id": "a"}, "'text' is empty"),
        ({"text": "hi", "customer_id": "a", "metadata": [1]}, "'metadata' must be an object"),
        ({"text": "hi", "customer_id": "a", "category": ["open_qa"]}, "'category' ['open_qa']"),
        ({"text": "hi", "customer_id": "a", "source": {"x": 1}}, "'source' must be"),
        ({"text": "hi", "customer_id": "a", "metadata": {"x": "a\u0000"}}, "NUL character"),
        ({"text": "a\u0000b", "customer_id": "a"}, "'text' contains a NUL character"),
    ],
)
def test_row_errors_say_what_to_fix(project, tmp_path, row, message):
    path = write_jsonl(tmp_path / "p.jsonl", [rows(1)[0], row])
    with pytest.raises(ApplicationError) as caught:
        run(project, path)
    error = caught.value.details["report"]["errors"][0]
    assert error["line"] == 2
    assert message in error["message"]
    assert not Prompt.objects.filter(project=project).exists()


def test_oversize_prompt_rejected_with_reason(project, tmp_path):
    project_update(project=project, data={"max_prompt_tokens": 50})
    path = write_jsonl(
        tmp_path / "p.jsonl", [{"text": "word " * 200, "customer_id": "a"}, rows(1)[0]]
    )
    report = run(project, path)
    assert (report["imported"], report["too_long"]) == (1, 1)
    assert report["rejected"][0]["line"] == 1
    assert "longer than 50 tokens" in report["rejected"][0]["reason"]


def test_empty_file_is_an_error(project, tmp_path):
    path = tmp_path / "empty.jsonl"
    path.write_text("\n\n")
    with pytest.raises(ApplicationError, match="holds no prompts"):
        run(project, path)


def test_csv_with_quoted_newlines_keeps_text_and_line_numbers(project, tmp_path):
    path = tmp_path / "p.csv"
    path.write_text(
        "text,customer_id,category\n"
        '"Line one\nline two, with a comma",c1,rewrite\n'
        '"Say ""hello""",c2,\n'
        '"Third\n\nprompt",,\n'
    )
    with pytest.raises(ApplicationError) as caught:
        run(project, path, fmt="csv")
    assert caught.value.details["report"]["errors"] == [
        {
            "line": 5,
            "message": "Line 5: 'customer_id' is missing "
            "(the user or organisation the prompt came from).",
        }
    ]
    report = run(project, path, fmt="csv", skip=True)
    assert report["imported"] == 2
    texts = set(Prompt.objects.filter(project=project).values_list("text", flat=True))
    assert texts == {"Line one\nline two, with a comma", 'Say "hello"'}


def test_csv_without_text_column(project, tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("question,customer_id\nhi,a\n")
    with pytest.raises(ApplicationError) as caught:
        run(project, path, fmt="csv")
    assert "needs a 'text' column" in caught.value.details["report"]["errors"][0]["message"]


def test_gzipped_jsonl(project, tmp_path):
    path = tmp_path / "p.jsonl.gz"
    with gzip.open(path, "wt") as out:
        for row in rows(30):
            out.write(json.dumps(row) + "\n")
    assert run(project, path)["imported"] == 30


def test_large_file_streams_through_in_chunks(project, tmp_path):
    path = tmp_path / "big.jsonl"
    with path.open("w") as out:
        for i in range(30000):
            out.write(
                json.dumps(
                    {
                        "text": f"Explain item {i} in detail please " + "x" * 200,
                        "customer_id": f"c{i % 500}",
                    }
                )
                + "\n"
            )
    assert path.stat().st_size > 7_000_000
    report = run(project, path)
    assert report["rows"] == 30000
    assert report["imported"] + report["over_cap"] == 30000
    assert report["imported"] == Prompt.objects.filter(project=project).count()


def test_management_command(project, tmp_path, capsys):
    path = write_jsonl(tmp_path / "p.jsonl", rows(3))
    call_command("import_prompts", "test", str(path))
    assert "Imported 3 of 3 rows." in capsys.readouterr().out
    bad = write_jsonl(tmp_path / "bad.jsonl", ["nope"])
    with pytest.raises(CommandError, match="not valid"):
        call_command("import_prompts", "test", str(bad))


def test_prompt_create_goes_through_the_same_filters(project, admin_user):
    prompt_create(project=project, user=admin_user, text="What is 2+2?", customer_id="z")
    with pytest.raises(ApplicationError, match="duplicate of a stored prompt"):
        prompt_create(project=project, user=admin_user, text="what is 2 + 2", customer_id="y")
    assert Prompt.objects.filter(project=project).count() == 1
