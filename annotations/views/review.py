"""Review pages: the queue of submitted demonstrations and one demonstration's review."""

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render

from annotations.errors import ApplicationError
from annotations.forms.review import ReviewForm
from annotations.roles import require
from annotations.selectors.access import demonstration_get_for_user
from annotations.selectors.labeler import demonstrations_for_review
from annotations.services.reviews import demonstration_review
from annotations.users import AuthedRequest


@require("review")
def review_list(request: AuthedRequest) -> HttpResponse:
    waiting = demonstrations_for_review(reviewer=request.user)
    return render(request, "review/list.html", {"waiting": waiting})


@require("review")
def review_detail(request: AuthedRequest, pk: int) -> HttpResponse:
    demonstration = demonstration_get_for_user(user=request.user, pk=pk)
    form = ReviewForm(request.POST or None, initial={"text": demonstration.text})
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            demonstration_review(
                demonstration_id=demonstration.pk,
                reviewer=request.user,
                decision=data["decision"],
                comment=data["comment"],
                text=data["text"],
            )
        except ApplicationError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, f"Demonstration {demonstration.pk}: {data['decision']}ed.")
            return redirect("review_list")
    context = {
        "demonstration": demonstration,
        "form": form,
        "own": demonstration.labeler_id == request.user.pk,
    }
    return render(request, "review/detail.html", context, status=400 if form.errors else 200)
