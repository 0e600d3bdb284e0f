from django.contrib import admin
from django.urls import include, path
from django.utils.translation import gettext_lazy as _

from backend.accounts import views as account_views
from backend.consultations import views as consultation_views
from backend.core import health
from miniprogram_api.api import api
from payments import views as payment_views

admin.site.site_header = _("岐黄互联网中医院 · 运营管理")
admin.site.site_title = _("岐黄运营管理")
admin.site.index_title = _("运营管理")

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("api/", api.urls),
    path("payments/notify/wechat", payment_views.wechat_notify, name="payments-notify-wechat"),
    path("payments/notify/alipay", payment_views.alipay_notify, name="payments-notify-alipay"),
    path("media/c/<str:token>", consultation_views.media_signed, name="consultation-media"),
    path("admin/login/", account_views.admin_login, name="admin-login"),
    path("admin/", admin.site.urls),
    path("staff/login/", account_views.staff_login, name="staff-login"),
    path("staff/logout/", account_views.staff_logout, name="staff-logout"),
    path("staff/", account_views.staff_home, name="staff-home"),
    path("console/", include("backend.consultations.urls")),
]
