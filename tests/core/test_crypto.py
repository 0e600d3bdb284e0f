"""SM4-GCM field encryption, blind indexes, SM3 and masking."""

from __future__ import annotations

import base64
import os

import pytest
from django.db import connection

from backend.accounts.models import PatientProfile, User
from backend.core.crypto import (
    DecryptionFailed,
    blind_index,
    ciphertext_kid,
    mask_id_number,
    mask_name,
    mask_phone,
    parse_keyring,
    sm3_hex,
    sm4_gcm_decrypt,
    sm4_gcm_encrypt,
)
from tests.conftest import ID_WANG, ID_WANG_WIFE, profile_payload


def test_sm3_standard_vector():
    # GB/T 32905-2016 example 1
    assert sm3_hex(b"abc") == "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"


def test_sm4_gcm_round_trip_and_binding_to_its_row():
    ct = sm4_gcm_encrypt("110101198803074518", b"accounts.patientprofile.id_number:1")
    assert ct.startswith("sm4gcm:") and "110101" not in ct
    assert sm4_gcm_decrypt(ct, b"accounts.patientprofile.id_number:1") == "110101198803074518"
    with pytest.raises(DecryptionFailed):
        sm4_gcm_decrypt(ct, b"accounts.patientprofile.id_number:2")  # copied to another row
    raw = bytearray(base64.b64decode(ct.split(":", 2)[2]))
    raw[14] ^= 1
    tampered = "sm4gcm:" + ciphertext_kid(ct) + ":" + base64.b64encode(bytes(raw)).decode()
    with pytest.raises(DecryptionFailed):
        sm4_gcm_decrypt(tampered, b"accounts.patientprofile.id_number:1")


def test_key_rotation_old_ciphertexts_still_decrypt():
    old = base64.b64encode(os.urandom(16)).decode()
    new = base64.b64encode(os.urandom(16)).decode()
    before = parse_keyring(f"k1:{old}")
    after = parse_keyring(f"k2:{new},k1:{old}")
    ct = sm4_gcm_encrypt("13800138000", b"aad", before)
    assert sm4_gcm_decrypt(ct, b"aad", after) == "13800138000"
    assert ciphertext_kid(sm4_gcm_encrypt("x", b"aad", after)) == "k2"
    with pytest.raises(DecryptionFailed):
        sm4_gcm_decrypt(ct, b"aad", parse_keyring(f"k2:{new}"))  # retired key removed too early


def test_blind_index_is_keyed_and_per_purpose(settings):
    a = blind_index("13800138000", "phone")
    assert a == blind_index("13800138000", "phone")
    assert a != blind_index("13800138000", "id_number")
    settings.BLIND_INDEX_KEY = base64.b64encode(os.urandom(32)).decode()
    assert blind_index("13800138000", "phone") != a


def test_masks():
    assert mask_phone("13800138000") == "138****8000"
    assert mask_id_number(ID_WANG) == "110***********4518"
    assert mask_name("王建国") == "王**"
    assert mask_phone("") == ""


def test_database_rows_hold_no_plaintext_id_number_or_phone(patient_wang, sandboxes):
    from django.test import Client

    patient_wang.post("/api/patients", profile_payload())
    patient_wang.post("/api/patients", profile_payload(name="李娜", id_number=ID_WANG_WIFE, relation="spouse",
                                                       phone="13911112222"))
    patient_wang.post("/api/me/phone", {"code": sandboxes.wechat.issue_phone_code("13733334444")})
    blob = sandboxes.wechat.encrypted_phone(patient_wang.openid, "13655556666")
    patient_wang.post("/api/me/phone/encrypted", {"encrypted_data": blob["encryptedData"], "iv": blob["iv"]})
    Client().post("/staff/login/", {"username": "13800138000", "password": ID_WANG})  # typed into the wrong box
    assert PatientProfile.objects.count() == 2 and User.objects.get().phone == "13655556666"
    dumped = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")  # noqa: S608 - catalogue names
            dumped.extend(str(value) for row in cursor.fetchall() for value in row)
    text = "\n".join(dumped)
    for secret in (ID_WANG, ID_WANG_WIFE, "13911112222", "13733334444", "13655556666", "198803074518"):
        assert secret not in text, secret
    # and the application reads them back
    assert {p.id_number for p in PatientProfile.objects.all()} == {ID_WANG, ID_WANG_WIFE}


def test_encrypted_fields_cannot_be_queried_by_plaintext(db):
    with pytest.raises(TypeError):
        list(PatientProfile.objects.filter(id_number=ID_WANG))


def test_moving_a_ciphertext_between_rows_is_detected(patient_wang):
    a = patient_wang.post("/api/patients", profile_payload()).json()
    b = patient_wang.post("/api/patients", profile_payload(name="李娜", id_number=ID_WANG_WIFE,
                                                           relation="spouse")).json()
    with connection.cursor() as cursor:
        cursor.execute("UPDATE accounts_patientprofile SET id_number = "
                       "(SELECT id_number FROM accounts_patientprofile WHERE id = %s) WHERE id = %s",
                       [a["id"], b["id"]])
    with pytest.raises(DecryptionFailed):
        _ = PatientProfile.objects.get(pk=b["id"]).id_number


def test_key_rotation_command_moves_rows_to_the_new_key(patient_wang, settings):
    from django.core.management import call_command

    created = patient_wang.post("/api/patients", profile_payload()).json()
    old_spec = settings.FIELD_ENCRYPTION_KEYS
    new_key = base64.b64encode(os.urandom(16)).decode()
    settings.FIELD_ENCRYPTION_KEYS = f"k9:{new_key},{old_spec}"
    call_command("reencrypt_fields")
    settings.FIELD_ENCRYPTION_KEYS = f"k9:{new_key}"  # the old key is gone now
    profile = PatientProfile.objects.get(pk=created["id"])
    assert profile.id_number == ID_WANG and profile.phone == "13800138000"
    with connection.cursor() as cursor:
        cursor.execute("SELECT id_number, phone FROM accounts_patientprofile WHERE id = %s", [created["id"]])
        assert all(value.startswith("sm4gcm:k9:") for value in cursor.fetchone())
    # lookups by blind index keep working
    index = PatientProfile._meta.get_field("id_number_index").index_of(ID_WANG)
    assert PatientProfile.objects.filter(id_number_index=index).count() == 1
