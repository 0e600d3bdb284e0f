"""Demo data for online follow-ups: the consent text, services and fees, and the HIS's offline visits."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from backend.accounts.models import DoctorProfile, PatientProfile
from backend.accounts.services.staff import doctor_assert_may_consult_online
from backend.consultations.models import ConsentTerms, OfflineVisit, OnlineService
from backend.consultations.services.records import diagnosis_codes_load_bundled
from backend.core.errors import PermissionDenied

CONSENT_VERSION = "2026.1"
CONSENT_TEXT = "\n".join([
    "一、互联网诊疗仅限常见病、慢性病复诊。您须已在实体医疗机构就诊并获得明确诊断，本次线上就诊须针对同一诊断。",
    "二、请如实提供既往诊断资料（门诊病历、住院病历、出院小结、诊断证明等）及病情信息；接诊医生将判断是否符合复诊条件，不符合者全额退款。",
    "三、如病情变化需要面诊或检查，医生将立即终止线上诊疗并建议您到医院就诊，诊费全额退还。",
    "四、6岁以下儿童就诊，须由监护人及相关专业医师陪同。",
    "五、线上开具的处方须经药师审核通过后方可缴费、调配和配送。",
    "六、诊疗过程（文字、图片、音视频）将依法记录并保存（病历不少于15年，图文及音视频不少于3年），您的个人信息将加密保护，仅用于诊疗。",
    "七、突发急症（如胸痛、呼吸困难、意识改变、大出血等）请勿使用线上问诊，立即拨打120或前往急诊。",
])

FEES = {"chief": 5000, "associate_chief": 4000}
VISITS = [
    # 就诊人, days ago, department, doctor, TCM diagnosis, western diagnosis, ICD-10
    ("王建国", 21, "内科", "李思远", "胃脘痛·脾胃虚寒证", "慢性胃炎", "K29.5"),
    ("李娜", 40, "妇科", "陈静", "月经不调·肝郁脾虚证", "月经不规则", "N92.6"),
    ("王小宝", 10, "儿科", "周明", "咳嗽·风寒袭肺证", "急性支气管炎", "J20.9"),
    ("张桂兰", 60, "内科", "李思远", "眩晕·肝阳上亢证", "原发性高血压", "I10"),
]


def _qualified(doctor: DoctorProfile) -> bool:
    try:
        doctor_assert_may_consult_online(doctor)
    except PermissionDenied:
        return False
    return True


def seed_consultations() -> None:
    diagnosis_codes_load_bundled()  # the demo's code table (replace with the official one by import)
    ConsentTerms.objects.get_or_create(version=CONSENT_VERSION, defaults=dict(
        title="互联网诊疗知情同意书", body=CONSENT_TEXT, effective_at=timezone.now() - timedelta(days=1)))
    for doctor in DoctorProfile.objects.select_related("department"):
        if _qualified(doctor):
            OnlineService.objects.get_or_create(doctor=doctor, kind="text", defaults=dict(
                department=doctor.department, fee_fen=FEES.get(doctor.title, 3000)))
            OnlineService.objects.get_or_create(doctor=doctor, kind="video", defaults=dict(
                department=doctor.department, fee_fen=FEES.get(doctor.title, 3000) + 2000))
    internal = DoctorProfile.objects.filter(department__code="internal").first()
    if internal:
        OnlineService.objects.get_or_create(doctor=None, department=internal.department, kind="text",
                                            defaults={"fee_fen": 2500})
    for i, (name, days, dept, doctor, tcm, western, icd) in enumerate(VISITS, start=1):
        patient = PatientProfile.objects.filter(name=name, archived_at__isnull=True).first()
        if patient is None or OfflineVisit.objects.filter(his_visit_no=f"DEMO-MZ-{i:04d}").exists():
            continue
        OfflineVisit.objects.create(
            his_visit_no=f"DEMO-MZ-{i:04d}", patient_name=name, id_number=patient.id_number,
            visit_date=timezone.localdate() - timedelta(days=days), department_name=dept, doctor_name=doctor,
            tcm_diagnosis=tcm, western_diagnosis=western, icd10_code=icd, is_chronic=True)
