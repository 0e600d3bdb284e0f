"""The doctor console's pages (server-rendered; a little JavaScript, no build step)."""

from django.urls import path

from backend.consultations import console

app_name = "console"

urlpatterns = [
    path("", console.queue_page, name="queue"),
    path("c/<uuid:consultation_id>/", console.consultation_page, name="consultation"),
]
