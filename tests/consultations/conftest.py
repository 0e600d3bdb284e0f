import pytest

from tests.payments.conftest import pay, pay_boxes  # noqa: F401  (payment sandboxes for the HTTP flows)


@pytest.fixture
def codes(db):
    """The bundled diagnosis code table, and a lookup by system and name."""
    from backend.consultations.models import DiagnosisCode
    from backend.consultations.services.records import diagnosis_codes_load_bundled

    diagnosis_codes_load_bundled()
    return lambda system, name: DiagnosisCode.objects.get(system=system, name=name)
