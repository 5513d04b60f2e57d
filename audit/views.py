from django.contrib import messages
from django.shortcuts import redirect, render

from audit.records import DeletionForm


def confirm_soft_delete(request, record, *, title, done, message, warning=""):
    """Ask for a reason, then hide the record: the shared body of every delete view."""
    form = DeletionForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        record.soft_delete(by=request.user, reason=form.cleaned_data["reason"])
        messages.success(request, message)
        return redirect(done)
    context = {"form": form, "title": title, "back": record.get_absolute_url(), "warning": warning}
    return render(request, "audit/confirm_delete.html", context, status=400 if form.errors else 200)
