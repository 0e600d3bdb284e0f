"""The TCM outpatient record (中医门诊病历): drafts, SM2-signed versions, amendments, verification, code table.

* ``fields``: input validation (vocab choices, active codes) and the canonical signed content;
* ``signing``: staff SM2 keys and the signing of one version;
* ``writes``: ``record_save_draft``, ``record_sign``, ``record_amend`` and the audited reads;
* ``verify``: ``record_verify``;
* ``codes``: the diagnosis code table (CSV import, the bundled demo table, search).
"""

from backend.consultations.services.records.codes import (
    CodeImportResult,
    diagnosis_codes_import,
    diagnosis_codes_import_csv,
    diagnosis_codes_load_bundled,
    diagnosis_codes_search,
)
from backend.consultations.services.records.signing import signing_key_for, version_sign
from backend.consultations.services.records.verify import RecordVerification, VersionCheck, record_verify
from backend.consultations.services.records.writes import (
    record_amend,
    record_read,
    record_save_draft,
    record_sign,
    record_signed_for_patient,
    record_verify_for_doctor,
    record_versions,
)

__all__ = [
    "CodeImportResult", "RecordVerification", "VersionCheck", "diagnosis_codes_import", "diagnosis_codes_import_csv",
    "diagnosis_codes_load_bundled", "diagnosis_codes_search", "record_amend", "record_read", "record_save_draft",
    "record_sign", "record_signed_for_patient", "record_verify", "record_verify_for_doctor", "record_versions",
    "signing_key_for", "version_sign",
]
