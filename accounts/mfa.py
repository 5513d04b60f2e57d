"""Second factor: TOTP apps, with one-time recovery codes for a lost phone (django-otp)."""

import io

import qrcode
import qrcode.image.svg
from django_otp import user_has_device
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

ENROLLED = "mfa_enrolled"
RECOVERY_CODES = 10


def is_enrolled(request):
    """Whether the user has a confirmed device; remembered in the session to spare a query a page."""
    enrolled = request.session.get(ENROLLED)
    if enrolled is None:
        enrolled = user_has_device(request.user, confirmed=True)
        request.session[ENROLLED] = enrolled
    return enrolled


def pending_totp(user):
    """The authenticator being set up: unconfirmed until a first code proves it works."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False).first()
    return device or TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=False)


def qr_svg(device):
    image = qrcode.make(device.config_url, image_factory=qrcode.image.svg.SvgPathImage, box_size=8)
    buffer = io.BytesIO()
    image.save(buffer)
    return buffer.getvalue().decode()


def secret_for_typing(device):
    from base64 import b32encode

    secret = b32encode(device.bin_key).decode().rstrip("=")
    return " ".join(secret[i:i + 4] for i in range(0, len(secret), 4))


def new_recovery_codes(user):
    """Replace the user's recovery codes as a set; each works once and is shown only now."""
    device, _ = StaticDevice.objects.get_or_create(user=user, name="Recovery codes", defaults={"confirmed": True})
    device.token_set.all().delete()
    codes = [StaticToken.random_token() for _ in range(RECOVERY_CODES)]
    StaticToken.objects.bulk_create([StaticToken(device=device, token=code) for code in codes])
    return codes


def remaining_recovery_codes(user):
    return StaticToken.objects.filter(device__user=user).count()


def remove_all(user):
    TOTPDevice.objects.filter(user=user).delete()
    StaticDevice.objects.filter(user=user).delete()
