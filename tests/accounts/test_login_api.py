"""Mini-program login against the WeChat sandbox, over real HTTP on 127.0.0.1."""

from __future__ import annotations

from django.test import Client

from backend.accounts.models import RefreshToken, Role, TokenFamily, User, WeChatIdentity
from backend.core.models import AuditEvent


def post(client: Client, path: str, data: dict, **kw):
    return client.post(path, data, content_type="application/json", **kw)


def test_bad_code_is_401_with_envelope(db, sandboxes):
    resp = post(Client(), "/api/auth/wechat-login", {"code": "not-a-code"})
    assert resp.status_code == 401
    assert resp.json() == {"code": "wechat_code_invalid", "message": resp.json()["message"], "detail": {}}
    assert "微信" in resp.json()["message"]
    assert User.objects.count() == 0
    assert AuditEvent.objects.filter(action="auth.wechat_login_failed").count() == 1


def test_good_code_creates_patient_account_and_tokens(db, sandboxes):
    code = sandboxes.wechat.issue_login_code("oNEW0001", unionid="uUNION0001")
    resp = post(Client(), "/api/auth/wechat-login", {"code": code})
    assert resp.status_code == 200, resp.content
    body = resp.json()
    assert body["is_new_account"] is True
    assert body["token_type"] == "Bearer" and body["expires_in"] == 900
    assert body["user"]["roles"] == [Role.PATIENT]
    identity = WeChatIdentity.objects.get(openid="oNEW0001")
    assert identity.unionid == "uUNION0001"
    assert str(identity.user_id) == body["user"]["id"]
    # the refresh token is stored only as its hash
    assert not RefreshToken.objects.filter(token_hash=body["refresh_token"]).exists()
    assert RefreshToken.objects.filter(family__user=identity.user).count() == 1


def test_same_openid_logs_into_same_account(login):
    first = login("oSAME")
    second = login("oSAME")
    assert first.user_id == second.user_id
    assert User.objects.count() == 1
    assert TokenFamily.objects.count() == 2


def test_code_cannot_be_used_twice(db, sandboxes):
    code = sandboxes.wechat.issue_login_code("oTWICE")
    assert post(Client(), "/api/auth/wechat-login", {"code": code}).status_code == 200
    again = post(Client(), "/api/auth/wechat-login", {"code": code})
    assert again.status_code == 401
    assert again.json()["code"] == "wechat_code_invalid"


def test_wechat_rate_limit_is_503_and_creates_nothing(db, sandboxes):
    code = sandboxes.wechat.issue_login_code("oBUSY")
    sandboxes.wechat.fail_next("/sns/jscode2session", "errcode", errcode=45009)
    resp = post(Client(), "/api/auth/wechat-login", {"code": code})
    assert resp.status_code == 503
    assert resp.json()["code"] == "wechat_unavailable"
    assert User.objects.count() == 0


def test_me_requires_a_valid_access_token(patient_wang):
    assert patient_wang.get("/api/me").status_code == 200
    anonymous = Client().get("/api/me")
    assert anonymous.status_code == 401 and anonymous.json()["code"] == "not_authenticated"
    forged = Client().get("/api/me", HTTP_AUTHORIZATION="Bearer " + patient_wang.access_token[:-2] + "xx")
    assert forged.status_code == 401 and forged.json()["code"] == "access_token_invalid"


def test_access_token_expires(patient_wang, settings):
    settings.ACCESS_TOKEN_TTL_SECONDS = -1
    resp = patient_wang.get("/api/me")
    assert resp.status_code == 401
    assert resp.json()["code"] == "access_token_invalid"


def test_refresh_rotates_and_old_access_keeps_working(patient_wang):
    resp = post(Client(), "/api/auth/refresh", {"refresh_token": patient_wang.refresh_token})
    assert resp.status_code == 200
    rotated = resp.json()
    assert rotated["refresh_token"] != patient_wang.refresh_token
    me = Client().get("/api/me", HTTP_AUTHORIZATION=f"Bearer {rotated['access_token']}")
    assert me.status_code == 200 and me.json()["id"] == patient_wang.user_id
    assert RefreshToken.objects.filter(used_at__isnull=True).count() == 1


def test_reusing_a_spent_refresh_token_revokes_the_family(patient_wang):
    first = post(Client(), "/api/auth/refresh", {"refresh_token": patient_wang.refresh_token}).json()
    replay = post(Client(), "/api/auth/refresh", {"refresh_token": patient_wang.refresh_token})
    assert replay.status_code == 401
    assert replay.json()["code"] == "refresh_token_reused"
    # the thief's replay also kills the legitimate successor and every access token of the family
    successor = post(Client(), "/api/auth/refresh", {"refresh_token": first["refresh_token"]})
    assert successor.status_code == 401
    assert Client().get("/api/me", HTTP_AUTHORIZATION=f"Bearer {first['access_token']}").status_code == 401
    assert patient_wang.get("/api/me").status_code == 401
    family = TokenFamily.objects.get()
    assert family.revoked_reason == "refresh_token_reuse"
    assert AuditEvent.objects.filter(action="auth.refresh_token_reuse").count() == 1


def test_reuse_in_one_family_leaves_other_logins_alone(login):
    phone = login("oTWO_DEVICES")
    tablet = login("oTWO_DEVICES")
    post(Client(), "/api/auth/refresh", {"refresh_token": phone.refresh_token})
    post(Client(), "/api/auth/refresh", {"refresh_token": phone.refresh_token})
    assert phone.get("/api/me").status_code == 401
    assert tablet.get("/api/me").status_code == 200


def test_unknown_refresh_token_is_401(db):
    resp = post(Client(), "/api/auth/refresh", {"refresh_token": "nope"})
    assert resp.status_code == 401 and resp.json()["code"] == "refresh_token_invalid"


def test_logout_revokes_the_login(patient_wang):
    assert post(Client(), "/api/auth/logout", {"refresh_token": patient_wang.refresh_token}).status_code == 204
    assert patient_wang.get("/api/me").status_code == 401
    again = post(Client(), "/api/auth/refresh", {"refresh_token": patient_wang.refresh_token})
    assert again.status_code == 401


def test_bind_phone_from_code(patient_wang, sandboxes):
    code = sandboxes.wechat.issue_phone_code("13912345678")
    resp = patient_wang.post("/api/me/phone", {"code": code})
    assert resp.status_code == 200, resp.content
    assert resp.json()["phone_masked"] == "139****5678"
    assert resp.json()["has_phone"] is True
    assert User.objects.get(pk=patient_wang.user_id).phone == "13912345678"


def test_bind_phone_from_bad_code_is_422(patient_wang):
    resp = patient_wang.post("/api/me/phone", {"code": "bogus"})
    assert resp.status_code == 422 and resp.json()["code"] == "phone_code_invalid"


def test_bind_phone_from_encrypted_data(patient_wang, sandboxes):
    blob = sandboxes.wechat.encrypted_phone(patient_wang.openid, "13700001111")
    resp = patient_wang.post("/api/me/phone/encrypted", {"encrypted_data": blob["encryptedData"], "iv": blob["iv"]})
    assert resp.status_code == 200, resp.content
    assert resp.json()["phone_masked"] == "137****1111"


def test_bind_phone_from_tampered_encrypted_data_is_422(patient_wang, sandboxes):
    blob = sandboxes.wechat.encrypted_phone(patient_wang.openid, "13700001111")
    tampered = ("A" if blob["encryptedData"][0] != "A" else "B") + blob["encryptedData"][1:]
    resp = patient_wang.post("/api/me/phone/encrypted", {"encrypted_data": tampered, "iv": blob["iv"]})
    assert resp.status_code == 422 and resp.json()["code"] == "phone_data_invalid"
    assert User.objects.get(pk=patient_wang.user_id).phone is None


def test_anonymous_requests_are_throttled_per_ip(db):
    client = Client()
    statuses = [post(client, "/api/auth/refresh", {"refresh_token": "x"}).status_code for _ in range(61)]
    assert statuses[:60] == [401] * 60
    assert statuses[60] == 429
    last = post(client, "/api/auth/refresh", {"refresh_token": "x"})
    assert last.json()["code"] == "too_many_requests"
    # another address is not affected
    assert post(client, "/api/auth/refresh", {"refresh_token": "x"}, REMOTE_ADDR="10.0.0.9").status_code == 401


def test_expired_refresh_token_is_refused(patient_wang):
    from django.utils import timezone

    RefreshToken.objects.update(expires_at=timezone.now() - timezone.timedelta(seconds=1))
    resp = post(Client(), "/api/auth/refresh", {"refresh_token": patient_wang.refresh_token})
    assert resp.status_code == 401 and resp.json()["code"] == "refresh_token_expired"


def test_disabled_account_cannot_refresh_or_use_tokens(patient_wang):
    User.objects.filter(pk=patient_wang.user_id).update(is_active=False)
    assert patient_wang.get("/api/me").status_code == 401
    resp = post(Client(), "/api/auth/refresh", {"refresh_token": patient_wang.refresh_token})
    assert resp.status_code == 401
    assert TokenFamily.objects.get().revoked_reason == "account_disabled"


def test_forwarded_for_header_does_not_escape_the_throttle(db):
    client = Client()
    statuses = [post(client, "/api/auth/refresh", {"refresh_token": "x"}, HTTP_X_FORWARDED_FOR=f"10.1.1.{i}")
                .status_code for i in range(61)]
    assert statuses[-1] == 429
