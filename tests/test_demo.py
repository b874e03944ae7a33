"""The demo that `make run` loads."""

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from annotations.models import ModelVersion, Project, WorkItem
from annotations.roles import Role, user_roles


@pytest.mark.django_db
def test_demo_loads_once_and_prints_passwords_once(capsys):
    call_command("demo")
    first = capsys.readouterr().out
    assert "Demo project 'Demo assistant' with 40 prompts." in first
    for name in ("labeler", "reviewer", "admin", "engineer"):
        assert f"  {name}" in first
    users = get_user_model().objects
    assert user_roles(users.get(username="engineer")) == {Role.ENGINEER}
    assert Project.objects.get(slug="demo").prompts.count() == 40
    kinds = set(WorkItem.objects.values_list("kind", flat=True))
    assert kinds == {"demonstration", "prompt_annotation", "prompt_writing", "ranking"}
    assert set(ModelVersion.objects.values_list("name", flat=True)) == {"tiny", "tiny-rm"}
    call_command("demo")
    second = capsys.readouterr().out
    assert "passwords are unchanged" in second
    assert Project.objects.count() == 1
    assert WorkItem.objects.count() == 28
