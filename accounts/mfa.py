"""Second factor: TOTP apps, with one-time recovery codes for a lost phone (django-otp)."""

import io
import math
import secrets

import qrcode
import qrcode.image.svg
from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.db import transaction
from django.utils import timezone
from django_otp import devices_for_user, user_has_device
from django_otp import login as otp_login
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import RecoveryCodes

ENROLLED = "mfa_enrolled"
RECOVERY_CODES = 10


def is_enrolled(request):
    """Whether the user has a confirmed device; remembered in the session to spare a query a page.

    The session's answer cannot go stale: adding or removing a device ends every other
    session of the person (`confirm`, `remove`, and the admin's `remove_second_factor`).
    """
    enrolled = request.session.get(ENROLLED)
    if enrolled is None:
        enrolled = user_has_device(request.user, confirmed=True)
        request.session[ENROLLED] = enrolled
    return enrolled


def is_required(user):
    """The one place that says who must sign in with a second factor."""
    return user.is_superuser or user.role in settings.MFA_REQUIRED_ROLES


def pending_totp(user):
    """The authenticator being set up: unconfirmed until a first code proves it works."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False).first()
    return device or TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=False)


def seconds_to_wait(devices, now=None):
    """How long until any of these devices takes a code again (0: one does now).

    After wrong codes django-otp refuses every code, the right one too, for a doubling
    pause; the person must be told to wait, not that their code was wrong."""
    now = now or timezone.now()
    waits = []
    for device in devices:
        allowed, info = device.verify_is_allowed()
        if allowed:
            return 0
        locked_until = (info or {}).get("locked_until")
        waits.append(math.ceil((locked_until - now).total_seconds()) if locked_until else 0)
    return max(min(waits, default=0), 0)


def seconds_to_wait_for(user):
    return seconds_to_wait(list(devices_for_user(user, confirmed=True)))


def wait_message(seconds):
    return (
        f"Too many wrong codes: wait {seconds} second{'s' if seconds != 1 else ''}, "
        "then enter the newest code from your app."
    )


def qr_svg(device):
    image = qrcode.make(device.config_url, image_factory=qrcode.image.svg.SvgPathImage, box_size=8)
    buffer = io.BytesIO()
    image.save(buffer)
    return buffer.getvalue().decode()


def secret_for_typing(device):
    from base64 import b32encode

    secret = b32encode(device.bin_key).decode().rstrip("=")
    return " ".join(secret[i:i + 4] for i in range(0, len(secret), 4))


@transaction.atomic
def new_recovery_codes(user):
    """Replace the user's recovery codes as a set; each works once and is shown only now."""
    codes = [secrets.token_hex(5) for _ in range(RECOVERY_CODES)]
    RecoveryCodes.objects.filter(user=user).delete()
    RecoveryCodes.objects.create(
        user=user, name="Recovery codes", confirmed=True, hashes=[make_password(code) for code in codes]
    )
    return codes


def recovery_batch(user):
    """Which set of recovery codes is current: a form to replace them names it, so that a
    refreshed page cannot replace the set just shown (and printed) by another."""
    device = RecoveryCodes.objects.filter(user=user).only("pk").first()
    return str(device.pk) if device else ""


def codes_download_url(user, codes):
    """The codes as a text file, built in the page itself: they are never stored in clear."""
    from urllib.parse import quote

    text = f"rupture-log recovery codes for {user.username}\nEach works once, in place of an app code.\n\n"
    return "data:text/plain;charset=utf-8," + quote(text + "\n".join(codes) + "\n")


def remaining_recovery_codes(user):
    device = RecoveryCodes.objects.filter(user=user).first()
    return len(device.hashes) if device else 0


def confirm(request, device):
    """The first code matched: the device is in use, and sessions opened without it end."""
    from accounts.services import end_other_sessions

    device.confirmed = True
    device.save(update_fields=["confirmed"])
    end_other_sessions(request=request, user=request.user)
    otp_login(request, device)
    request.session[ENROLLED] = True


def remove(request):
    from accounts.services import end_other_sessions

    remove_all(request.user)
    end_other_sessions(request=request, user=request.user)
    request.session[ENROLLED] = False


def remove_all(user):
    TOTPDevice.objects.filter(user=user).delete()
    RecoveryCodes.objects.filter(user=user).delete()
