"""Operators: intents with their ledger and refunds, notifications, bill mismatches; audited refunds."""

from __future__ import annotations

from decimal import Decimal

from django import forms
from django.contrib import admin, messages
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from backend.core.admin_access import OperatorOnlyAdmin, ReadOnlyAdmin, is_operator
from backend.core.errors import DomainError
from payments.models import BillMismatch, InboundNotification, PaymentIntent, PaymentTransaction, Refund
from payments.selectors import intent_amounts
from payments.services.refunds import refund_create


class ReadOnlyInline(OperatorOnlyAdmin, admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class TransactionInline(ReadOnlyInline):
    model = PaymentTransaction
    fields = ("kind", "amount_fen", "refund", "provider_ref", "source", "created_at")
    readonly_fields = fields


class RefundInline(ReadOnlyInline):
    model = Refund
    fields = ("out_refund_no", "amount_fen", "reason", "status", "actor", "automatic", "created_at")
    readonly_fields = fields


class RefundForm(forms.Form):
    amount_yuan = forms.DecimalField(label=_("退款金额（元）"), min_value=Decimal("0.01"), decimal_places=2,
                                     max_digits=12)
    reason = forms.CharField(label=_("退款原因"), max_length=80)

    def amount_fen(self) -> int:
        yuan = self.cleaned_data["amount_yuan"]
        return int(yuan.scaleb(2).to_integral_value())


@admin.register(PaymentIntent)
class PaymentIntentAdmin(OperatorOnlyAdmin, admin.ModelAdmin):
    list_display = ("out_trade_no", "channel", "amount_fen", "status", "payable_type", "flag_reason", "created_at")
    list_filter = ("status", "channel", "payable_type")
    search_fields = ("out_trade_no", "provider_trade_no", "payable_id")
    inlines = [TransactionInline, RefundInline]
    readonly_fields = ("out_trade_no", "channel", "amount_fen", "currency", "description", "payable_type",
                       "payable_id", "account", "status", "provider_ref", "provider_trade_no", "expires_at",
                       "succeeded_at", "closed_at", "close_reason", "flag_reason", "ledger", "refund_link")
    fields = readonly_fields

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description=_("账务"))
    def ledger(self, obj: PaymentIntent) -> str:
        a = intent_amounts(obj.pk)
        return _("已收 %(paid)d 分 · 已退 %(refunded)d 分 · 退款中 %(reserved)d 分 · 可退 %(refundable)d 分") % {
            "paid": a.paid_fen, "refunded": a.refunded_fen, "reserved": a.reserved_fen,
            "refundable": a.refundable_fen}

    @admin.display(description=_("操作"))
    def refund_link(self, obj: PaymentIntent) -> str:
        return format_html('<a class="button" href="{}">{}</a>',
                           reverse("admin:payments_paymentintent_refund", args=[obj.pk]), _("发起退款"))

    def get_urls(self):
        return [path("<uuid:intent_id>/refund/", self.admin_site.admin_view(self.refund_view),
                     name="payments_paymentintent_refund"), *super().get_urls()]

    def refund_view(self, request, intent_id):
        intent = get_object_or_404(PaymentIntent, pk=intent_id)
        if not is_operator(request.user):
            return redirect("admin:index")
        form = RefundForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                refund = refund_create(intent_id=intent.pk, amount_fen=form.amount_fen(),
                                       reason=form.cleaned_data["reason"], actor=request.user)
            except DomainError as exc:
                form.add_error(None, exc.message)
            else:
                self.message_user(request, _("已发起退款 %(no)s") % {"no": refund.out_refund_no}, messages.SUCCESS)
                return redirect("admin:payments_paymentintent_change", intent.pk)
        context = {**self.admin_site.each_context(request), "intent": intent, "form": form,
                   "amounts": intent_amounts(intent.pk), "title": _("发起退款")}
        return render(request, "payments/refund_form.html", context)


@admin.register(Refund)
class RefundAdmin(ReadOnlyAdmin, admin.ModelAdmin):
    list_display = ("out_refund_no", "intent", "amount_fen", "status", "automatic", "actor", "created_at")
    list_filter = ("status", "automatic")
    search_fields = ("out_refund_no",)


@admin.register(InboundNotification)
class InboundNotificationAdmin(ReadOnlyAdmin, admin.ModelAdmin):
    list_display = ("provider", "kind", "out_trade_no", "outcome", "detail", "received_at")
    list_filter = ("provider", "outcome", "kind")
    search_fields = ("out_trade_no", "dedupe_key")


@admin.register(BillMismatch)
class BillMismatchAdmin(OperatorOnlyAdmin, admin.ModelAdmin):
    list_display = ("bill_date", "channel", "kind", "out_trade_no", "out_refund_no", "bill_amount_fen",
                    "ledger_amount_fen", "resolved")
    list_filter = ("channel", "kind", "resolved", "bill_date")
    list_editable = ("resolved",)
    readonly_fields = ("channel", "bill_date", "kind", "out_trade_no", "out_refund_no", "bill_amount_fen",
                       "ledger_amount_fen", "detected_at")

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
