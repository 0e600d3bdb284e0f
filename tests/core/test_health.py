"""/healthz and /readyz against the real PostgreSQL, Redis and broker."""

from __future__ import annotations

from django.test import Client


def test_healthz(db):
    resp = Client().get("/healthz")
    assert resp.status_code == 200 and resp.json() == {"status": "ok"}


def test_readyz_checks_everything(db):
    resp = Client().get("/readyz")
    assert resp.status_code == 200, resp.content
    checks = resp.json()["checks"]
    assert {name: c["status"] for name, c in checks.items()} == {"database": "ok", "redis": "ok", "broker": "ok"}


def test_readyz_names_redis_when_it_is_down(db, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    resp = Client().get("/readyz")
    assert resp.status_code == 503
    assert resp.json()["failed"] == ["redis"]
    assert resp.json()["checks"]["database"]["status"] == "ok"


def test_readyz_names_the_broker_when_it_is_down(db, settings):
    from backend.config.celery import app

    original = app.conf.broker_url
    app.conf.broker_url = settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    try:
        resp = Client().get("/readyz")
    finally:
        app.conf.broker_url = original
    assert resp.status_code == 503 and resp.json()["failed"] == ["broker"]


def test_api_docs_are_served(db):
    docs = Client().get("/api/docs")
    assert docs.status_code == 200 and b"swagger" in docs.content.lower()
    schema = Client().get("/api/openapi.json").json()
    login = schema["paths"]["/api/auth/wechat-login"]["post"]["responses"]
    assert "422" in login and "401" in login
