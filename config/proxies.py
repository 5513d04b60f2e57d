"""The client's address and scheme, believed only as far as the deployer says.

With `DJANGO_TRUSTED_PROXY_COUNT` = N, exactly N proxies stand between the internet and
the app, each appending the address it was reached from to `X-Forwarded-For`. The
client is then the Nth entry from the right: anything further left was written by the
client and proves nothing. With N = 0 (the default) the headers are ignored entirely,
since any caller could have sent them.
"""

import ipaddress

from django.conf import settings


def client_address(meta, trusted_proxies):
    """The address of whoever opened the connection to the outermost trusted proxy."""
    direct = meta.get("REMOTE_ADDR")
    if trusted_proxies < 1:
        return direct
    hops = [hop.strip() for hop in meta.get("HTTP_X_FORWARDED_FOR", "").split(",") if hop.strip()]
    if len(hops) < trusted_proxies:
        # Fewer hops than proxies: the request did not come through all of them.
        return direct
    candidate = hops[-trusted_proxies]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return direct


class TrustedProxyMiddleware:
    """Puts the client's address in REMOTE_ADDR, where axes, the access log and Django look."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        count = settings.TRUSTED_PROXY_COUNT
        if count:
            request.META["REMOTE_ADDR"] = client_address(request.META, count)
        return self.get_response(request)


def remote_addr(request):
    """For AXES_CLIENT_IP_CALLABLE: the address TrustedProxyMiddleware settled on."""
    return request.META.get("REMOTE_ADDR")
