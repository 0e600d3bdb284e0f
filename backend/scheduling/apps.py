from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SchedulingConfig(AppConfig):
    name = "backend.scheduling"
    label = "scheduling"
    verbose_name = _("排班与预约")

    def ready(self) -> None:
        from backend.scheduling.payables import KIND, BookingPayable
        from payments.payables import register_payable

        register_payable(KIND, BookingPayable())
