from backend.consultations.models.consultations import Consultation, MediaFile, Message
from backend.consultations.models.eligibility import ConsentRecord, ConsentTerms, OfflineVisit, OnlineService
from backend.consultations.models.records import ClinicalRecord, ClinicalRecordVersion, DiagnosisCode, SigningKey

__all__ = [
    "ClinicalRecord", "ClinicalRecordVersion", "ConsentRecord", "ConsentTerms", "Consultation", "DiagnosisCode",
    "MediaFile", "Message", "OfflineVisit", "OnlineService", "SigningKey",
]
