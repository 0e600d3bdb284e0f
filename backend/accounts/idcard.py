"""Identity documents: the resident ID (GB 11643-1999) and the other accepted types."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date

from django.db import models
from django.utils.translation import gettext_lazy as _

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK_CHARS = "10X98765432"
_RESIDENT_RE = re.compile(r"^[1-9][0-9]{16}[0-9X]$")


class IdType(models.TextChoices):
    RESIDENT_ID = "resident_id", _("居民身份证")
    PASSPORT = "passport", _("护照")
    HK_MACAU_PERMIT = "hk_macau_permit", _("港澳居民来往内地通行证")
    TAIWAN_PERMIT = "taiwan_permit", _("台湾居民来往大陆通行证")
    FOREIGN_PERMANENT_RESIDENT = "foreign_permanent_resident", _("外国人永久居留身份证")


class Sex(models.TextChoices):
    MALE = "male", _("男")
    FEMALE = "female", _("女")


_OTHER_PATTERNS = {
    IdType.PASSPORT: re.compile(r"^[A-Z0-9]{5,17}$"),
    IdType.HK_MACAU_PERMIT: re.compile(r"^[HM][0-9]{8}([0-9]{2})?$"),
    IdType.TAIWAN_PERMIT: re.compile(r"^[0-9]{8}([0-9]{2})?$"),
    IdType.FOREIGN_PERMANENT_RESIDENT: re.compile(r"^([A-Z]{3}[0-9]{12}|9[0-9]{16}[0-9X])$"),
}


class InvalidIdNumber(ValueError):
    def __init__(self, code: str, message: str) -> None:
        self.code, self.message = code, message
        super().__init__(message)


@dataclass(frozen=True)
class ResidentIdFacts:
    birth_date: date
    sex: str


def normalize_id_number(value: str) -> str:
    """NFKC (full-width ＩＤ１２３ → ID123), no spaces, upper case: one spelling per document."""
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", value or "")).upper()


def resident_id_check_char(first17: str) -> str:
    total = sum(int(d) * w for d, w in zip(first17, _WEIGHTS, strict=True))
    return _CHECK_CHARS[total % 11]


def parse_resident_id(value: str, today: date) -> ResidentIdFacts:
    """Validate an 18-digit resident ID and derive birth date and sex from it."""
    number = normalize_id_number(value)
    if not _RESIDENT_RE.match(number):
        raise InvalidIdNumber("id_number_format", str(_("身份证号码应为18位，最后一位可为数字或X")))
    if resident_id_check_char(number[:17]) != number[17]:
        raise InvalidIdNumber("id_number_checksum", str(_("身份证号码校验位不正确，请核对")))
    try:
        born = date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError as exc:
        raise InvalidIdNumber("id_number_birth_date", str(_("身份证号码中的出生日期无效"))) from exc
    if born > today or born.year < 1880:
        raise InvalidIdNumber("id_number_birth_date", str(_("身份证号码中的出生日期无效")))
    sex = Sex.MALE if int(number[16]) % 2 == 1 else Sex.FEMALE
    return ResidentIdFacts(birth_date=born, sex=sex)


def validate_other_document(id_type: str, value: str) -> str:
    number = normalize_id_number(value)
    pattern = _OTHER_PATTERNS.get(IdType(id_type))
    if pattern is None or not pattern.match(number):
        raise InvalidIdNumber("id_number_format", str(_("证件号码格式不正确")))
    return number


def age_on(birth_date: date, today: date) -> int:
    years = today.year - birth_date.year
    if (today.month, today.day) < (birth_date.month, birth_date.day):
        years -= 1
    return years
