"""The admin of the verification log (read-only) and its dashboard."""

from __future__ import annotations

from django.conf import settings
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models.constants import LOOKUP_SEP
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone

from accounts.phone import InvalidPhoneNumber, mask_phone_number, phone_number_parse

from . import dashboard
from .models import Outcome, Purpose, VerificationLog


class MaskedNumberLookupsMixin:
    """Refuse URL lookups that would read the digits of a number the changelist masks.

    The changelist turns any URL parameter on a field into a filter: a staff
    member who may only view could ask ?number__startswith=+1415555012 (or
    __regex, __gt, __range…) and learn from the rows shown whether the guess
    was right, one digit at a time. Only an exact number may be looked up,
    which tells no more than the exact search. Django answers a refused lookup
    with HTTP 400 and logs it (django.security.DisallowedModelAdminLookup).
    The masked column must not be sortable either, or the order of the rows
    would tell the same.
    """

    masked_number_fields: tuple[str, ...] = ()

    def lookup_allowed(self, lookup, value, request=None):
        field, _, rest = lookup.partition(LOOKUP_SEP)
        if field in self.masked_number_fields and rest not in {"", "exact"}:
            return False
        return super().lookup_allowed(lookup, value, request)


@admin.register(VerificationLog)
class VerificationLogAdmin(MaskedNumberLookupsMixin, admin.ModelAdmin):
    """Read-only: rows are written by the flows, removed by purgeverificationlog."""

    masked_number_fields = ("number",)

    list_display = (
        "created_at",
        "outcome",
        "purpose",
        "masked_number",
        "user",
        "backend",
        "request_id",
        "ip",
        "price_display",
        "detail",
    )
    list_filter = ("outcome", "purpose", "backend", "created_at")
    # Exact matches only: a partial one would tell the masked digits, and
    # exact ones use the indexes. A phone number typed in any format is
    # normalised to E.164 first (get_search_results).
    search_fields = ("=number", "=request_id")
    search_help_text = (
        "A phone number (any format, e.g. +1 415 555 0100) or an upstream request id, exactly."
    )
    date_hierarchy = "created_at"
    list_select_related = ("user",)
    # A COUNT(*) of the whole log on every page is slow once it is large.
    show_full_result_count = False
    fields = (
        "created_at",
        "outcome",
        "purpose",
        "masked_number",
        "user",
        "backend",
        "request_id",
        "ip",
        "price",
        "currency",
        "detail",
    )
    readonly_fields = fields

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        # Superusers only, for an erasure request; retention is the purge
        # command's job, and other staff cannot edit the record.
        return request.user.is_active and request.user.is_superuser

    # Not sortable: the order of the rows would tell the hidden digits.
    @admin.display(description="phone number")
    def masked_number(self, obj):
        return mask_phone_number(obj.number) if obj.number else "-"

    @admin.display(description="price", ordering="price")
    def price_display(self, obj):
        if obj.price is None:
            return "-"
        return f"{obj.price.normalize():f} {obj.currency}".strip()

    def get_search_results(self, request, queryset, search_term):
        try:
            number = phone_number_parse(search_term, region=settings.DEFAULT_PHONE_REGION)
        except InvalidPhoneNumber:
            return super().get_search_results(request, queryset, search_term)
        return queryset.filter(number=number), False

    def get_urls(self):
        dashboard_url = path(
            "dashboard/",
            self.admin_site.admin_view(self.dashboard_view),
            name="verificationlog_verificationlog_dashboard",
        )
        return [dashboard_url, *super().get_urls()]

    def dashboard_view(self, request):
        """Show the last 30 days of the log: outcomes, conversion, spend, who fails most."""
        # admin_view() lets in active staff only; the log's view permission
        # decides which staff see it, as on the changelist.
        if not self.has_view_permission(request):
            raise PermissionDenied
        purpose = request.GET.get("purpose", "")
        if purpose not in Purpose.values:
            purpose = ""
        data = dashboard.verification_dashboard_get(purpose=purpose)
        context = {
            **self.admin_site.each_context(request),
            "title": "Verification dashboard",
            "subtitle": Purpose(purpose).label if purpose else "all purposes",
            "opts": self.model._meta,
            "dashboard": data,
            "time_zone": timezone.get_current_timezone_name(),
            "purpose": purpose,
            "purposes": Purpose.choices,
            "legend": [(outcome.label, dashboard.OUTCOME_COLOURS[outcome]) for outcome in Outcome],
            "outcome_labels": Outcome.labels,
            "outcomes_chart": dashboard.outcomes_chart(data),
            "conversion_chart": dashboard.conversion_chart(data),
            "spend_charts": dashboard.spend_charts(data),
            "numbers_chart": dashboard.offenders_chart(
                data.top_numbers,
                chart_id="chart-numbers",
                title="Phone numbers with the most failed attempts",
            ),
            "ips_chart": dashboard.offenders_chart(
                data.top_ips,
                chart_id="chart-ips",
                title="Client IPs with the most failed attempts",
            ),
            "failed_outcomes": ",".join(dashboard.FAILED_ATTEMPT_OUTCOMES),
            "failed_labels": ", ".join(o.label for o in dashboard.FAILED_ATTEMPT_OUTCOMES),
            "changelist_url": reverse(
                f"{self.admin_site.name}:verificationlog_verificationlog_changelist"
            ),
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(
            request, "admin/verificationlog/verificationlog/dashboard.html", context
        )
