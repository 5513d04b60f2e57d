"""The admin site: clinic admins manage people and supervision, and nothing more.

What a clinic admin (role admin, staff, no superuser) can and cannot do here is the
least-privilege line of the whole system (README, "Who sees what"):
- no field that grants rights: superuser, staff, groups and permissions are only in a
  superuser's form, and an admin's own role is read-only to them;
- no password: not set, not shown; a person gets a link to choose one, e-mailed to the
  address on file. Changing that address, sending a link and removing a second factor
  are recorded in the access log under the admin's name and announced to the person;
- no operator accounts: superusers are not listed to clinic admins;
- nothing holding clinical text or secrets is registered at all: change history
  (pghistory), authenticator devices, sessions, sign-in attempts (AXES_ENABLE_ADMIN).
"""

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.views import redirect_to_login
from django.http import Http404
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts import services
from accounts.models import SupervisionLink, User

PERSON_FIELDS = ["username", "display_name", "first_name", "last_name", "email"]
# Staff is not among them: it follows the role (services.set_role), admins and operators only.
# Superuser is shown, never edited: operators are made with `createsuperuser` on the server.
OPERATOR_FIELDS = ["is_superuser", "groups", "user_permissions"]


class NewPersonForm(forms.ModelForm):
    email = forms.EmailField(help_text="The link to choose a password goes here.")

    class Meta:
        model = User
        fields = ["username", "display_name", "first_name", "last_name", "email", "role"]


@admin.register(User)
class UserAdmin(admin.ModelAdmin):
    list_display = ["username", "display_name", "email", "role", "is_active", "last_login"]
    list_filter = ["role", "is_active"]
    search_fields = ["username", "display_name", "email"]
    ordering = ["username"]
    filter_horizontal = ["groups", "user_permissions"]
    actions = ["send_password_links", "remove_second_factors"]

    def get_queryset(self, request):
        people = super().get_queryset(request)
        return people if request.user.is_superuser else people.filter(is_superuser=False)

    def lookup_allowed(self, lookup, value, request=None):
        # A filter on the hash (?password__startswith=) would let anyone guess it letter by letter.
        return not lookup.startswith("password") and super().lookup_allowed(lookup, value, request)

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = NewPersonForm
        return super().get_form(request, obj, **kwargs)

    def get_fieldsets(self, request, obj=None):
        if obj is None:
            return [(None, {"fields": NewPersonForm.Meta.fields,
                            "description": "No password here: the person is e-mailed a link to choose one."})]
        fieldsets = [
            (None, {"fields": PERSON_FIELDS}),
            ("Clinic", {"fields": ["role", "is_active"]}),
            ("Signing in", {"fields": ["second_factor", "last_login", "date_joined"],
                            "description": "Passwords are never set or shown here: use the actions on the "
                                           "list to e-mail a link, or to remove a lost second factor."}),
        ]
        if request.user.is_superuser:
            fieldsets.append(("Operator only", {"fields": OPERATOR_FIELDS}))
        return fieldsets

    def get_readonly_fields(self, request, obj=None):
        readonly = ["second_factor", "last_login", "date_joined", "is_superuser"]
        if obj is not None and obj.pk == request.user.pk and not request.user.is_superuser:
            readonly.append("role")  # nobody raises their own rights
        return readonly

    @admin.display(description="Second factor")
    def second_factor(self, obj):
        return "On" if TOTPDevice.objects.filter(user=obj, confirmed=True).exists() else "Off"

    def save_model(self, request, obj, form, change):
        if not change:
            obj.set_unusable_password()
        super().save_model(request, obj, form, change)
        if change and "email" in form.changed_data:
            services.record_email_change(request=request, user=obj, old_email=form.initial.get("email") or "")

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        # After the form's own groups (a superuser's form has them): the role's group wins.
        services.set_role(user=form.instance, role=form.instance.role)
        if not change:
            services.send_reset_link(request=request, user=form.instance)

    @admin.action(description="E-mail a link to choose a password", permissions=["change"])
    def send_password_links(self, request, queryset):
        sent = [user for user in queryset if services.send_reset_link(request=request, user=user)]
        skipped = queryset.count() - len(sent)
        messages.success(request, f"Sent a password link to {len(sent)} {'person' if len(sent) == 1 else 'people'}.")
        if skipped:
            messages.warning(request, f"{skipped} had no e-mail address or an inactive account: nothing sent.")

    @admin.action(description="Remove the second factor (lost phone)", permissions=["change"])
    def remove_second_factors(self, request, queryset):
        for user in queryset:
            services.remove_second_factor(request=request, user=user)
        messages.success(request, f"Removed the second factor of {queryset.count()}; they set up a new one "
                                  "at their next sign-in, and were told by e-mail.")


@admin.register(SupervisionLink)
class SupervisionLinkAdmin(admin.ModelAdmin):
    list_display = ["supervisor", "therapist", "starts_on", "ends_on"]
    list_filter = ["supervisor"]
    list_select_related = ["supervisor", "therapist"]
    autocomplete_fields = []


# Authenticator devices hold the TOTP secret; an operator manages them from the shell.
admin.site.unregister(TOTPDevice)


@login_not_required
@never_cache
def _sign_in_through_the_app(request, extra_context=None):
    """The admin site's own sign-in would skip the app's; people without the admin site get a 404."""
    if request.user.is_authenticated and not request.user.is_staff:
        raise Http404
    if request.user.is_authenticated:
        return redirect("admin:index")
    return redirect_to_login(request.GET.get("next") or reverse("admin:index"))


admin.site.login = _sign_in_through_the_app
