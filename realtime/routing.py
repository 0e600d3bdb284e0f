from django.urls import path

from realtime.consultations import ConsoleConsumer, ConsultationChatConsumer
from realtime.consumers import AccountEventsConsumer

websocket_urlpatterns = [
    path("ws/account/", AccountEventsConsumer.as_asgi()),
    path("ws/consultations/<uuid:consultation_id>/", ConsultationChatConsumer.as_asgi()),
    path("ws/console/", ConsoleConsumer.as_asgi()),
]
