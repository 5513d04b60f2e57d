from audit.models import AccessEvent


def record(request, action, what, *, key="", client=None, detail=None):
    """Write one access event for the signed-in user of `request` (or a command's None)."""
    user = getattr(request, "user", None)
    return AccessEvent.objects.create(
        user=user if user is not None and user.is_authenticated else None,
        action=action, what=what, key=key or (client.code if client else ""),
        client=client, ip=request.META.get("REMOTE_ADDR") if request is not None else None,
        detail=detail or {},
    )
