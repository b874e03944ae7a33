import pytest

from tests.helpers import log_in

pytestmark = pytest.mark.django_db(transaction=True)


def test_log_in_and_see_projects(page, admin_user, project):
    log_in(page, admin_user)
    page.goto("/projects/")
    assert page.get_by_role("link", name="Test project").is_visible()
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url("**/login/")


def test_wrong_password_says_so(page, labeler):
    page.goto("/login/")
    page.fill("#id_username", labeler.username)
    page.fill("#id_password", "wrong")
    page.click("button[type=submit]")
    assert "Please enter a correct username and password" in page.locator(".error").inner_text()
