"""就诊人 through the API: validation, masking, verification, limits, object-level access."""

from __future__ import annotations

import pytest

from backend.accounts.models import PatientProfile, VerificationStatus
from backend.core.models import AuditEvent
from tests.conftest import ID_CHILD, ID_GRANDPA, ID_WANG, ID_WANG_WIFE, profile_payload


def create(who, **overrides):
    return who.post("/api/patients", profile_payload(**overrides))


def test_create_derives_sex_and_birth_date_and_masks(patient_wang):
    resp = create(patient_wang)
    assert resp.status_code == 201, resp.content
    body = resp.json()
    assert body["sex"] == "male" and body["birth_date"] == "1988-03-07"
    assert body["id_number_masked"] == "110***********4518"
    assert body["phone_masked"] == "138****8000"
    assert body["is_default"] is True and body["verification_status"] == "unverified"
    assert ID_WANG not in resp.content.decode() and "13800138000" not in resp.content.decode()


def test_bad_check_digit_is_422_with_clear_code(patient_wang):
    resp = create(patient_wang, id_number=ID_WANG[:-1] + "7")
    assert resp.status_code == 422
    assert resp.json()["code"] == "id_number_checksum"
    assert resp.json()["detail"] == {"field": "id_number"}
    assert "校验位" in resp.json()["message"]
    assert PatientProfile.objects.count() == 0


@pytest.mark.parametrize(("number", "code"), [
    ("11010119880307451", "id_number_format"),
    ("110101198813074512", "id_number_checksum"),
    ("110101199002300000", "id_number_checksum"),
])
def test_malformed_resident_ids(patient_wang, number, code):
    resp = create(patient_wang, id_number=number)
    assert resp.status_code == 422 and resp.json()["code"] == code


def test_impossible_birth_date_with_valid_check_digit(patient_wang):
    from backend.accounts.idcard import resident_id_check_char

    first17 = "11010119900230001"  # 30 February
    resp = create(patient_wang, id_number=first17 + resident_id_check_char(first17))
    assert resp.status_code == 422 and resp.json()["code"] == "id_number_birth_date"


def test_lowercase_x_is_accepted_and_normalised(patient_wang):
    first17 = "11010119851010002"
    from backend.accounts.idcard import resident_id_check_char

    check = resident_id_check_char(first17)
    number = first17 + check.lower()
    resp = create(patient_wang, id_number=number, name="李芳", relation="spouse")
    assert resp.status_code == 201, resp.content
    assert resp.json()["id_number_masked"].endswith(first17[-3:] + check)


def test_passport_needs_sex_and_birth_date(patient_wang):
    resp = create(patient_wang, id_type="passport", id_number="E12345678", name="John Smith")
    assert resp.status_code == 422 and resp.json()["code"] == "sex_and_birth_date_required"
    resp = create(patient_wang, id_type="passport", id_number="E12345678", name="John Smith",
                  sex="male", birth_date="1980-01-02")
    assert resp.status_code == 201, resp.content
    assert resp.json()["id_number_masked"] == "E******78"


def test_schema_validation_is_422_in_the_envelope(patient_wang):
    resp = patient_wang.post("/api/patients", {"name": "王", "relation": "friend"})
    assert resp.status_code == 422
    body = resp.json()
    assert body["code"] == "validation_error"
    locs = {tuple(e["loc"]) for e in body["detail"]}
    assert ("body", "payload", "id_number") in locs and ("body", "payload", "relation") in locs


def test_nul_characters_are_refused(patient_wang):
    resp = create(patient_wang, name="王\x00建国")
    assert resp.status_code == 422 and resp.json()["code"] == "validation_error"


def test_invalid_json_is_an_envelope_not_a_500(patient_wang):
    resp = patient_wang.client.post("/api/patients", data="{not json", content_type="application/json",
                                    **patient_wang.auth())
    assert resp.status_code in (400, 422)
    assert set(resp.json()) == {"code", "message", "detail"}


def test_list_get_update_delete(patient_wang):
    me = create(patient_wang).json()
    wife = create(patient_wang, name="李娜", id_number=ID_WANG_WIFE, relation="spouse", phone="").json()
    listed = patient_wang.get("/api/patients")
    assert listed.status_code == 200
    assert listed.json()["count"] == 2
    assert [p["id"] for p in listed.json()["items"]] == [me["id"], wife["id"]]

    got = patient_wang.get(f"/api/patients/{wife['id']}")
    assert got.status_code == 200 and got.json()["sex"] == "female"

    changed = patient_wang.patch(f"/api/patients/{wife['id']}", {"allergies": "花粉", "is_default": True})
    assert changed.status_code == 200 and changed.json()["is_default"] is True
    assert patient_wang.get(f"/api/patients/{me['id']}").json()["is_default"] is False

    assert patient_wang.delete(f"/api/patients/{wife['id']}").status_code == 204
    assert patient_wang.get(f"/api/patients/{wife['id']}").status_code == 404
    remaining = patient_wang.get("/api/patients").json()
    assert remaining["count"] == 1 and remaining["items"][0]["is_default"] is True
    archived = PatientProfile.objects.get(pk=wife["id"])
    assert archived.archived_at is not None  # kept for the records, gone from the account
    actions = list(AuditEvent.objects.values_list("action", flat=True))
    for action in ("patient_profile.create", "patient_profile.list", "patient_profile.read",
                   "patient_profile.update", "patient_profile.archive"):
        assert action in actions


def test_same_id_number_once_per_account(patient_wang, patient_zhang):
    assert create(patient_wang).status_code == 201
    dup = create(patient_wang, relation="other")
    assert dup.status_code == 409 and dup.json()["code"] == "profile_duplicate_id_number"
    # another account may hold the same person (e.g. a son managing his father's visits)
    assert create(patient_zhang, relation="parent").status_code == 201


def test_only_one_self_profile(patient_wang):
    assert create(patient_wang).status_code == 201
    resp = create(patient_wang, name="李娜", id_number=ID_WANG_WIFE)
    assert resp.status_code == 409 and resp.json()["code"] == "profile_self_exists"


def test_at_most_eight_profiles(patient_wang, settings):
    from backend.accounts.idcard import resident_id_check_char

    for i in range(8):
        first17 = f"110101197001{i + 1:02d}001"
        number = first17 + resident_id_check_char(first17)
        assert create(patient_wang, id_number=number, relation="other").status_code == 201
    ninth = "11010119700110001"
    resp = create(patient_wang, id_number=ninth + resident_id_check_char(ninth), relation="other")
    assert resp.status_code == 409 and resp.json()["code"] == "profile_limit_reached"
    assert resp.json()["detail"] == {"limit": 8}


def test_other_accounts_profile_is_404_everywhere(patient_wang, patient_zhang):
    mine = create(patient_wang).json()
    url = f"/api/patients/{mine['id']}"
    assert patient_zhang.get(url).status_code == 404
    assert patient_zhang.patch(url, {"allergies": "无"}).status_code == 404
    assert patient_zhang.delete(url).status_code == 404
    assert patient_zhang.post(url + "/verify").status_code == 404
    assert patient_zhang.get("/api/patients").json()["count"] == 0
    assert patient_zhang.get(url).json()["code"] == "not_found"
    assert PatientProfile.objects.get(pk=mine["id"]).allergies == "青霉素"


def test_verification_through_the_sandbox(patient_wang, sandboxes):
    sandboxes.realname.add_person("王建国", ID_WANG)
    profile = create(patient_wang).json()
    resp = patient_wang.post(f"/api/patients/{profile['id']}/verify")
    assert resp.status_code == 200, resp.content
    assert resp.json()["verification_status"] == "verified"
    assert resp.json()["verified_at"] is not None
    # identity is locked once verified
    locked = patient_wang.patch(f"/api/patients/{profile['id']}", {"name": "王建军"})
    assert locked.status_code == 409 and locked.json()["code"] == "profile_identity_locked"
    # verifying again does not call the provider again
    calls = len(sandboxes.realname.requests())
    assert patient_wang.post(f"/api/patients/{profile['id']}/verify").status_code == 200
    assert len(sandboxes.realname.requests()) == calls


def test_verification_mismatch_and_no_record(patient_wang, sandboxes):
    sandboxes.realname.add_person("王建军", ID_WANG)
    profile = create(patient_wang).json()
    resp = patient_wang.post(f"/api/patients/{profile['id']}/verify")
    assert resp.json()["verification_status"] == "failed"
    assert resp.json()["verification_note"] == "姓名与证件号码不一致"
    # fixing the name resets the status and the check can be run again
    fixed = patient_wang.patch(f"/api/patients/{profile['id']}", {"name": "王建军"})
    assert fixed.json()["verification_status"] == "unverified"
    assert patient_wang.post(f"/api/patients/{profile['id']}/verify").json()["verification_status"] == "verified"

    other = create(patient_wang, name="李娜", id_number=ID_WANG_WIFE, relation="spouse").json()
    nobody = patient_wang.post(f"/api/patients/{other['id']}/verify")
    assert nobody.json()["verification_status"] == "failed"
    assert nobody.json()["verification_note"] == "未查询到该证件号码"


def test_verifier_outage_is_503_and_leaves_profile_unverified(patient_wang, sandboxes):
    profile = create(patient_wang).json()
    sandboxes.realname.fail_next("/v1/idcard/two-factor", "http500")
    resp = patient_wang.post(f"/api/patients/{profile['id']}/verify")
    assert resp.status_code == 503 and resp.json()["code"] == "realname_unavailable"
    assert PatientProfile.objects.get(pk=profile["id"]).verification_status == VerificationStatus.UNVERIFIED


def test_passport_goes_to_manual_review(patient_wang, sandboxes):
    profile = create(patient_wang, id_type="passport", id_number="E12345678", name="John Smith",
                     sex="male", birth_date="1980-01-02").json()
    resp = patient_wang.post(f"/api/patients/{profile['id']}/verify")
    assert resp.json()["verification_status"] == "pending_manual"
    assert sandboxes.realname.requests() == []


def _verified_adult(who, sandboxes, name="王建国", number=ID_WANG, relation="self"):
    sandboxes.realname.add_person(name, number)
    profile = create(who, name=name, id_number=number, relation=relation).json()
    assert who.post(f"/api/patients/{profile['id']}/verify").json()["verification_status"] == "verified"
    return profile


def test_child_under_six_needs_a_verified_adult_guardian(patient_wang, sandboxes):
    child = {"name": "王小宝", "id_number": ID_CHILD, "relation": "child", "phone": ""}
    missing = create(patient_wang, **child)
    assert missing.status_code == 422 and missing.json()["code"] == "guardian_required"

    unverified = create(patient_wang, name="李娜", id_number=ID_WANG_WIFE, relation="spouse").json()
    bad = create(patient_wang, **child, guardian_id=unverified["id"])
    assert bad.status_code == 422 and bad.json()["code"] == "guardian_invalid"

    guardian = _verified_adult(patient_wang, sandboxes)
    ok = create(patient_wang, **child, guardian_id=guardian["id"])
    assert ok.status_code == 201, ok.content
    assert ok.json()["guardian_id"] == guardian["id"] and ok.json()["age"] < 6
    # the guardian cannot be removed while the child depends on them
    gone = patient_wang.delete(f"/api/patients/{guardian['id']}")
    assert gone.status_code == 409 and gone.json()["code"] == "profile_is_guardian"


def test_guardian_must_belong_to_the_same_account(patient_wang, patient_zhang, sandboxes):
    theirs = _verified_adult(patient_zhang, sandboxes)
    resp = create(patient_wang, name="王小宝", id_number=ID_CHILD, relation="child", guardian_id=theirs["id"])
    assert resp.status_code == 422 and resp.json()["code"] == "guardian_invalid"


def test_elderly_profile_needs_no_guardian(patient_wang):
    resp = create(patient_wang, name="王老汉", id_number=ID_GRANDPA, relation="parent")
    assert resp.status_code == 201 and resp.json()["guardian_id"] is None and resp.json()["age"] >= 76


def test_a_result_is_never_recorded_for_an_identity_changed_during_the_check(patient_wang):
    """The provider answered for 王建国; meanwhile the profile became someone else."""
    from backend.accounts.services.realname import _record
    from backend.core.errors import Conflict

    created = create(patient_wang).json()
    checked = PatientProfile.objects.get(pk=created["id"])  # what was sent to the provider
    patient_wang.patch(f"/api/patients/{created['id']}", {"name": "张三", "id_number": ID_GRANDPA,
                                                          "relation": "parent"})
    with pytest.raises(Conflict) as exc:
        _record(checked, VerificationStatus.VERIFIED, serial="S1")
    assert exc.value.code == "profile_changed_during_verification"
    current = PatientProfile.objects.get(pk=created["id"])
    assert current.verification_status == VerificationStatus.UNVERIFIED and current.name == "张三"


def test_full_width_digits_are_the_same_document(patient_wang):
    assert create(patient_wang).status_code == 201
    full_width = ID_WANG.translate(str.maketrans("0123456789", "０１２３４５６７８９"))
    dup = create(patient_wang, id_number=full_width, relation="other")
    assert dup.status_code == 409 and dup.json()["code"] == "profile_duplicate_id_number"
    arabic_indic = ID_WANG.translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩"))
    other = create(patient_wang, id_number=arabic_indic, relation="other")
    assert other.status_code == 422 and other.json()["code"] == "id_number_format"
    phone = create(patient_wang, name="李娜", id_number=ID_WANG_WIFE, relation="spouse", phone="13８００１３８０００")
    assert phone.status_code == 201 and phone.json()["phone_masked"] == "138****8000"
