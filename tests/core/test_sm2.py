"""SM2 with SM3: the standard's example, round trips, tampering, and interoperability with gmssl."""

from __future__ import annotations

import pytest
from gmssl.sm2 import CryptSM2

from backend.core.sm2 import N, sm2_e, sm2_generate_keypair, sm2_public_key_of, sm2_sign, sm2_verify

# GM/T 0003.5-2012, the signature example on the recommended curve (user id 1234567812345678)
STD_PRIVATE = "3945208F7B2144B13F36E38AC6D39F95889393692860B51A42FB81EF4DF7C5B8"
STD_PUBLIC = ("04" "09f9df311e5421a150dd7d161e4bc5c672179fad1833fc076bb08ff356f35020"
              "ccea490ce26775a52dc6ea718cc1aa600aed05fbf35e084a6632f6072da9ad13")
STD_K = "59276E27D506861A16680F3AD9C02DCCEF3CC1FA3CDBE4CE6D54B80DEAC1BC21"
STD_SIGNATURE = ("f5a03b0648d2c4630eeac513e1bb81a15944da3827d5b74143ac7eaceee720b3"
                 "b1b6aa29df212fd8763182bc0d421ca1bb9038fd1f7f42d4840b69c485bbc1aa")
MESSAGE = "病历内容：胃脘痛 脾胃虚寒证".encode()


def _gmssl(private_key: str, public_key: str) -> CryptSM2:
    """gmssl used directly. Its constructor's lstrip("04") would also eat leading 0/4 digits of x,
    so the 128-hex x‖y is set on the instance."""
    engine = CryptSM2(private_key=private_key, public_key="")
    engine.public_key = public_key[2:]
    return engine


def test_the_standard_example_key_and_signature():
    assert sm2_public_key_of(STD_PRIVATE) == STD_PUBLIC
    e = sm2_e(STD_PUBLIC[2:], b"message digest")
    assert _gmssl(STD_PRIVATE, STD_PUBLIC).sign(e, STD_K) == STD_SIGNATURE
    assert sm2_verify(STD_PUBLIC, b"message digest", STD_SIGNATURE)
    assert not sm2_verify(STD_PUBLIC, b"message digesT", STD_SIGNATURE)


def test_e_is_what_gmssl_sign_with_sm3_signs():
    pair = sm2_generate_keypair()
    assert sm2_e(pair.public_key[2:], MESSAGE).hex() == _gmssl(pair.private_key, pair.public_key)._sm3_z(MESSAGE)


def test_generated_keys_are_in_range_and_encoded_as_hex():
    pair = sm2_generate_keypair()
    assert len(pair.private_key) == 64 and 1 <= int(pair.private_key, 16) <= N - 2
    assert len(pair.public_key) == 130 and pair.public_key.startswith("04")
    assert sm2_public_key_of(pair.private_key) == pair.public_key
    assert sm2_generate_keypair().private_key != pair.private_key


def test_sign_verify_round_trip_with_a_fresh_k_each_time():
    pair = sm2_generate_keypair()
    first = sm2_sign(pair.private_key, MESSAGE, public_key=pair.public_key)
    second = sm2_sign(pair.private_key, MESSAGE)  # public key derived
    assert len(first) == 128 and first != second
    assert sm2_verify(pair.public_key, MESSAGE, first) and sm2_verify(pair.public_key, MESSAGE, second)


def test_a_flipped_byte_fails():
    pair = sm2_generate_keypair()
    signature = sm2_sign(pair.private_key, MESSAGE, public_key=pair.public_key)
    tampered_message = bytearray(MESSAGE)
    tampered_message[3] ^= 0x01
    assert not sm2_verify(pair.public_key, bytes(tampered_message), signature)
    flipped = signature[:10] + format(int(signature[10:12], 16) ^ 0x01, "02x") + signature[12:]
    assert not sm2_verify(pair.public_key, MESSAGE, flipped)


def test_a_different_key_fails():
    pair, other = sm2_generate_keypair(), sm2_generate_keypair()
    signature = sm2_sign(pair.private_key, MESSAGE, public_key=pair.public_key)
    assert not sm2_verify(other.public_key, MESSAGE, signature)


def test_gmssl_signatures_verify_with_ours_and_ours_with_gmssl():
    pair = sm2_generate_keypair()
    engine = _gmssl(pair.private_key, pair.public_key)
    theirs = engine.sign_with_sm3(MESSAGE)
    ours = sm2_sign(pair.private_key, MESSAGE, public_key=pair.public_key)
    assert sm2_verify(pair.public_key, MESSAGE, theirs)
    assert engine.verify_with_sm3(ours, MESSAGE)
    assert not engine.verify_with_sm3(ours, MESSAGE + b"!")


@pytest.mark.parametrize("signature", [
    "", "zz" * 64, "00" * 64, "ff" * 64, STD_SIGNATURE[:-2], STD_SIGNATURE + "00",
    "0" * 64 + STD_SIGNATURE[64:],  # r = 0
    STD_SIGNATURE[:64] + f"{N:064x}",  # s = n
])
def test_malformed_or_out_of_range_signatures_are_false_not_errors(signature):
    assert sm2_verify(STD_PUBLIC, b"message digest", signature) is False


@pytest.mark.parametrize("public_key", [
    "", STD_PUBLIC[2:], "05" + STD_PUBLIC[2:], STD_PUBLIC[:-1] + "0",  # off the curve
    "04" + "00" * 64,
])
def test_bad_public_keys_are_false_not_errors(public_key):
    assert sm2_verify(public_key, b"message digest", STD_SIGNATURE) is False


def test_private_keys_outside_the_range_are_refused():
    for bad in ("0" * 64, f"{N - 1:064x}", f"{N:064x}"):
        with pytest.raises(ValueError):
            sm2_public_key_of(bad)
