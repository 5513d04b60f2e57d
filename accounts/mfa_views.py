from django import forms
from django.conf import settings
from django.contrib import messages
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_otp import login as otp_login
from django_otp import match_token

from accounts import mfa


class CodeForm(forms.Form):
    code = forms.CharField(
        label="Code", max_length=16,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True}),
    )

    def clean_code(self):
        return "".join(self.cleaned_data["code"].split())


def _next(request):
    url = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(url, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return url
    return settings.LOGIN_REDIRECT_URL


@require_GET
def overview(request):
    return _overview(request, remove_form=CodeForm(auto_id="remove_%s"))


def _overview(request, *, remove_form, status=200):
    user = request.user
    remove_form.fields["code"].widget.attrs.pop("autofocus", None)  # not the page's first field
    return render(request, "accounts/mfa_overview.html", {
        "enrolled": mfa.is_enrolled(request),
        "required": mfa.is_required(user),
        "recovery_left": mfa.remaining_recovery_codes(user),
        "recovery_batch": mfa.recovery_batch(user),
        "remove_form": remove_form,
    }, status=status)


@require_http_methods(["GET", "POST"])
def setup(request):
    user = request.user
    if user.is_verified() or mfa.is_enrolled(request):
        return redirect("mfa_overview")
    device = mfa.pending_totp(user)
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        wait = mfa.seconds_to_wait([device])
        if wait:
            form.add_error("code", mfa.wait_message(wait))
        elif device.verify_token(form.cleaned_data["code"]):
            mfa.confirm(request, device)
            codes = mfa.new_recovery_codes(user)
            return _show_recovery_codes(request, codes, _next(request))
        else:
            form.add_error("code", "That code did not match. Check the time on your phone and try the newest code.")
    context = {"form": form, "qr": mfa.qr_svg(device), "secret": mfa.secret_for_typing(device),
               "required": mfa.is_required(user), "next": _next(request)}
    return render(request, "accounts/mfa_setup.html", context, status=400 if form.errors else 200)


@require_http_methods(["GET", "POST"])
def verify(request):
    if request.user.is_verified():
        return redirect(_next(request))
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        wait = mfa.seconds_to_wait_for(request.user)
        device = None if wait else match_token(request.user, form.cleaned_data["code"])
        if device is not None:
            otp_login(request, device)
            return redirect(_next(request))
        if wait:
            form.add_error("code", mfa.wait_message(wait))
        else:
            form.add_error("code", "That code is not valid. Use the newest code from your app, or a recovery code.")
    return render(request, "accounts/mfa_verify.html", {"form": form, "next": _next(request)},
                  status=400 if form.errors else 200)


@require_POST
def recovery_codes(request):
    if not request.user.is_verified():
        return redirect("mfa_verify")
    if request.POST.get("replaces", "") != mfa.recovery_batch(request.user):
        # The page was refreshed, or the form sent twice: the codes shown then still stand.
        messages.info(
            request,
            "Your recovery codes were already replaced; the ones shown then still work. "
            "Make new ones only if you did not keep them.",
        )
        return redirect("mfa_overview")
    codes = mfa.new_recovery_codes(request.user)
    return _show_recovery_codes(request, codes, settings.LOGIN_REDIRECT_URL)


def _show_recovery_codes(request, codes, next_url):
    context = {"codes": codes, "next": next_url, "download": mfa.codes_download_url(request.user, codes)}
    return render(request, "accounts/mfa_recovery_codes.html", context)


@require_POST
def remove(request):
    """Turning the second factor off takes a current code: a session alone is not enough."""
    user = request.user
    if mfa.is_required(user):
        messages.error(request, "Your role requires a second factor; it cannot be removed.")
        return redirect("mfa_overview")
    form = CodeForm(request.POST)
    if form.is_valid() and match_token(user, form.cleaned_data["code"]) is not None:
        mfa.remove(request)
        messages.success(request, "Two-step sign-in is off.")
        return redirect("mfa_overview")
    if form.is_valid():
        form.add_error("code", "That code is not valid. Use the newest code from your app, or a recovery code.")
    return _overview(request, remove_form=form, status=400)
