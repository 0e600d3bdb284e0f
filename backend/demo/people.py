"""The demo hospital: departments, staff and patients (fictional; ID numbers have valid check digits)."""

from __future__ import annotations

from datetime import date

from backend.accounts.models import DoctorTitle, PharmacistTitle, Role

DEPARTMENTS = [("internal", "内科"), ("gynecology", "妇科"), ("pediatrics", "儿科"), ("acupuncture", "针灸推拿科")]

DOCTORS = [
    # username, name, department, title, independent practice since, specialties
    ("dr_li", "李思远", "internal", DoctorTitle.CHIEF, date(2004, 9, 1), "脾胃病、失眠、慢性咳嗽"),
    ("dr_chen", "陈静", "gynecology", DoctorTitle.ASSOCIATE_CHIEF, date(2010, 7, 1), "月经不调、更年期综合征"),
    ("dr_zhou", "周明", "pediatrics", DoctorTitle.ATTENDING, date(2016, 8, 1), "小儿咳嗽、厌食、体质调理"),
    ("dr_sun", "孙立", "acupuncture", DoctorTitle.ATTENDING, date(2014, 3, 1), "颈肩腰腿痛、面瘫"),
    # fewer than 3 years of independent practice: may not take online consultations (IH-04)
    ("dr_wu", "吴晓", "internal", DoctorTitle.RESIDENT, date(2024, 9, 1), "常见病"),
]
PHARMACIST = ("pharmacist_zhao", "赵敏", PharmacistTitle.SUPERVISING, date(2011, 6, 1))
DISPENSER = ("dispenser_qian", "钱师傅", "中药房")
COURIER = ("courier_chen", "陈师傅", "市区（二环内）")
OPERATOR = ("operator_admin", "运营管理员")

# Demo mini-program users: openid, then their 就诊人 (name, resident ID, relation, phone).
PATIENTS = [
    ("oDEMO_WANG", "王建国", [
        ("王建国", "110101198803074518", "self", "13800138000"),
        ("李娜", "110101199005126023", "spouse", "13911112222"),
        ("王小宝", "440306202306011231", "child", ""),  # under 6: guardian 王建国
    ]),
    ("oDEMO_ZHANG", "张桂兰", [
        ("张桂兰", "310115195001010012", "self", "13700001111"),
    ]),
]

STAFF_ROLES = {"doctor": Role.DOCTOR, "pharmacist": Role.PHARMACIST, "dispenser": Role.DISPENSER,
               "courier": Role.COURIER, "operator": Role.OPERATOR}
