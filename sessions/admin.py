from django.contrib import admin

from sessions.models import Client


@admin.register(Client)
class ClientAdmin(admin.ModelAdmin):
    # Assignment only: the admin sees case codes, never names or clinical records.
    list_display = ["code", "therapist", "status", "started_on"]
    list_filter = ["status", "therapist"]
    list_select_related = ["therapist"]
    search_fields = ["code"]
    fields = ["code", "therapist", "status", "started_on"]
    readonly_fields = ["code"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
