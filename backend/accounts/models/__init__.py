from backend.accounts.models.patients import PatientProfile, Relation, VerificationStatus
from backend.accounts.models.staff import (
    CourierProfile,
    Department,
    DispenserProfile,
    DoctorProfile,
    DoctorTitle,
    PharmacistProfile,
    PharmacistTitle,
)
from backend.accounts.models.users import RefreshToken, Role, TokenFamily, User, UserRole, WeChatIdentity

__all__ = [
    "CourierProfile", "Department", "DispenserProfile", "DoctorProfile", "DoctorTitle", "PatientProfile",
    "PharmacistProfile", "PharmacistTitle", "RefreshToken", "Relation", "Role", "TokenFamily", "User",
    "UserRole", "VerificationStatus", "WeChatIdentity",
]
