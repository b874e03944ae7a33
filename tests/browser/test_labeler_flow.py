"""The labeler flow in real Chromium: next, write, autosave, reload, submit, skip, shortcuts,
and hostile prompt text that must stay text."""

import re

import pytest

from annotations.models import Demonstration, PromptAnnotation
from annotations.roles import Role
from tests.factories import ProjectFactory, UserFactory, WorkItemFactory
from tests.helpers import XSS_IMG, XSS_SCRIPT, log_in

XSS = f"Reply to this:\n  {XSS_SCRIPT}\n  {XSS_IMG}"


@pytest.mark.django_db(transaction=True)
def test_labeler_writes_autosaves_reloads_submits_and_skips(page):
    project = ProjectFactory()
    WorkItemFactory(project=project, prompt__text=XSS)
    WorkItemFactory(project=project, prompt__text="Second prompt, to skip")
    labeler = UserFactory(roles=[Role.LABELER])
    log_in(page, labeler)

    page.goto("/work/")
    page.keyboard.press("Alt+KeyN")  # next task
    page.wait_for_url(re.compile(r"/work/tasks/"))
    task_url = page.url
    assert page.inner_text("#prompt-body") == XSS  # shown as text, whitespace kept
    assert page.eval_on_selector("#prompt-body", "e => getComputedStyle(e).whiteSpace") == (
        "pre-wrap"
    )
    assert page.locator("#prompt-body img, #prompt-body script").count() == 0

    page.fill("textarea[name=text]", "A careful answer.")
    page.wait_for_function(
        "document.getElementById('save-status').textContent.trim().startsWith('Saved')"
    )
    assert page.inner_text("#char-count") == "17"
    page.reload()
    assert page.input_value("textarea[name=text]") == "A careful answer."
    assert page.inner_text("#save-status").startswith("Saved")

    page.select_option("select[name=category]", "open_qa")
    page.check("input[name=flag_asks_advice]")
    page.focus("textarea[name=text]")
    page.keyboard.press("Control+Enter")  # submit, then the next task
    page.wait_for_url(lambda url: "/work/tasks/" in url and url != task_url)
    assert "Second prompt, to skip" in page.inner_text("#prompt-body")

    page.keyboard.press("Alt+KeyK")  # focus the skip reason
    page.keyboard.type("unclear prompt")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/work/$"))
    assert "Nothing waiting — check back later." in page.inner_text("main")

    demonstration = Demonstration.objects.get()
    assert (demonstration.state, demonstration.text) == ("submitted", "A careful answer.")
    assert demonstration.time_spent_ms > 0
    assert PromptAnnotation.objects.get().data["flags"]["asks_advice"] is True


@pytest.mark.django_db(transaction=True)
def test_autosave_says_when_it_fails_and_retries(page):
    WorkItemFactory(prompt__text="Hi")
    labeler = UserFactory(roles=[Role.LABELER])
    log_in(page, labeler)
    page.goto("/work/")
    page.click("[data-next]")
    page.wait_for_url(re.compile(r"/work/tasks/"))
    page.route("**/draft/", lambda route: route.abort())
    page.fill("textarea[name=text]", "Words that must not be lost")
    page.wait_for_function(
        "document.getElementById('save-status').textContent.includes('Not saved — retrying')"
    )
    page.unroute("**/draft/")
    page.wait_for_function(
        "document.getElementById('save-status').textContent.trim().startsWith('Saved')"
    )
    assert Demonstration.objects.get().text == "Words that must not be lost"
