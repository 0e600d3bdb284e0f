from datetime import date

import pytest

from backend.accounts.models import DoctorProfile, DoctorTitle, Role
from backend.accounts.services.staff import StaffAccount, staff_user_create
from tests.payments.conftest import pay, pay_boxes  # noqa: F401  (payment sandboxes for the HTTP flows)


@pytest.fixture
def codes(db):
    """The bundled diagnosis code table, and a lookup by system and name."""
    from backend.consultations.models import DiagnosisCode
    from backend.consultations.services.records import diagnosis_codes_load_bundled

    diagnosis_codes_load_bundled()
    return lambda system, name: DiagnosisCode.objects.get(system=system, name=name)


@pytest.fixture
def dr_wu(departments):
    """Another doctor of dr_li's department."""
    user = staff_user_create(account=StaffAccount("dr_wu", "Wu-Doctor-2026!", "吴医生", (Role.DOCTOR,)))
    DoctorProfile.objects.create(user=user, department=departments["internal"], title=DoctorTitle.CHIEF,
                                 qualification_certificate_no="200811110110102",
                                 practice_certificate_no="110110000012346",
                                 independent_practice_since=date(2010, 7, 1))
    return user
