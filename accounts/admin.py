from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin

from accounts.models import SupervisionLink, User
from accounts.services import set_role


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    list_display = ["username", "display_name", "email", "role", "is_active", "last_login"]
    list_filter = ["role", "is_active"]
    fieldsets = BaseUserAdmin.fieldsets + (("Clinic", {"fields": ["role", "display_name"]}),)
    add_fieldsets = BaseUserAdmin.add_fieldsets + (("Clinic", {"fields": ["role", "display_name", "email"]}),)

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        set_role(user=obj, role=obj.role)


@admin.register(SupervisionLink)
class SupervisionLinkAdmin(admin.ModelAdmin):
    list_display = ["supervisor", "therapist", "starts_on", "ends_on"]
    list_filter = ["supervisor"]
    list_select_related = ["supervisor", "therapist"]
    autocomplete_fields = []
