import time

from django.conf import settings
from django.contrib.auth import REDIRECT_FIELD_NAME, logout
from django.contrib.auth import middleware as auth_middleware
from django.contrib.auth.views import redirect_to_login
from django.shortcuts import resolve_url
from django.utils.cache import add_never_cache_headers
from django_htmx.http import HttpResponseClientRedirect

from accounts import mfa

SIGNED_IN_AT = "signed_in_at"
TOUCHED_AT = "touched_at"


def to_login(request, login_url=None):
    """Send the browser to sign in: a whole-page redirect, even from an htmx fragment."""
    login_url = resolve_url(login_url or settings.LOGIN_URL)
    if request.htmx:
        # Without this, htmx would swap the login page into the fragment it asked for.
        back = request.htmx.current_url_abs_path or request.get_full_path()
        return HttpResponseClientRedirect(redirect_to_login(back, login_url)["Location"])
    return redirect_to_login(request.get_full_path(), login_url, REDIRECT_FIELD_NAME)


class LoginRequiredMiddleware(auth_middleware.LoginRequiredMiddleware):
    def handle_no_permission(self, request, view_func):
        return to_login(request, self.get_login_url(view_func))


class SessionLimitsMiddleware:
    """Ends a session 12 hours after sign-in however active it was (HIPAA automatic logoff),
    and after SESSION_COOKIE_AGE (15 minutes) without a request.

    The idle limit is the session's own expiry, slid forward by saving the session. Saving
    it on every request would cost each page a database write and commit, so it is saved
    when its last slide is more than SESSION_TOUCH_SECONDS old: the idle limit then falls
    between 15 minutes less that, and 15 minutes, after the last request; never later.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.user.is_authenticated:
            now = time.time()
            signed_in_at = request.session.setdefault(SIGNED_IN_AT, now)
            if now - signed_in_at > settings.SESSION_ABSOLUTE_SECONDS:
                logout(request)
            # Signing in saved the session: its expiry slid then.
            elif now - request.session.get(TOUCHED_AT, signed_in_at) >= settings.SESSION_TOUCH_SECONDS:
                request.session[TOUCHED_AT] = now  # modified: saved with a new expiry
        return self.get_response(request)


class MFARequiredMiddleware:
    """The roles in MFA_REQUIRED_ROLES, and operators, must use a second factor; anyone enrolled must verify."""

    EXEMPT = ("/accounts/mfa/", "/accounts/logout/", "/static/")

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = request.user
        if user.is_authenticated and not request.path.startswith(self.EXEMPT) and not user.is_verified():
            if mfa.is_enrolled(request):
                return self._redirect(request, "mfa_verify")
            if mfa.is_required(user):
                return self._redirect(request, "mfa_setup")
        return self.get_response(request)

    def _redirect(self, request, name):
        return to_login(request, name)


class NoStoreMiddleware:
    """Pages for signed-in people hold PHI: no browser or proxy may keep a copy."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if request.user.is_authenticated and not request.path.startswith("/static/"):
            add_never_cache_headers(response)
            response["Cache-Control"] = "no-store, no-cache, must-revalidate, private, max-age=0"
        return response
