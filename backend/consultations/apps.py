from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ConsultationsConfig(AppConfig):
    name = "backend.consultations"
    label = "consultations"
    verbose_name = _("在线复诊")

    def ready(self) -> None:
        from backend.consultations.payables import KIND, ConsultationPayable
        from payments.payables import register_payable

        register_payable(KIND, ConsultationPayable())
