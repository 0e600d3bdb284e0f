from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class DemoConfig(AppConfig):
    name = "backend.demo"
    label = "demo"
    verbose_name = _("演示数据")

    def ready(self) -> None:
        from backend.demo.payables import KIND, DemoChargePayable
        from payments.payables import register_payable

        register_payable(KIND, DemoChargePayable())
