"""The doctor console's pages (server-rendered; a little JavaScript, no build step)."""

urlpatterns: list = []
