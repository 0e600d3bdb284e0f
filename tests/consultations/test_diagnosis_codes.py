"""The diagnosis code table: the bundled demo table, search, and the import path for official tables."""

from __future__ import annotations

import csv

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from backend.consultations.models import DiagnosisCode
from backend.consultations.services.records import diagnosis_codes_load_bundled, diagnosis_codes_search
from tests.consultations.helpers import staff_client as staff

CONFIRMED_1995 = {"BNF010": "咳嗽病", "BNW010": "感冒", "BNW011": "时行感冒", "BEZ020": "肺炎喘嗽", "BNX010": "头痛病"}


def test_the_bundled_table_loads_idempotently_and_invents_no_official_codes(db):
    first = diagnosis_codes_load_bundled()
    again = diagnosis_codes_load_bundled()
    assert first.created == DiagnosisCode.objects.count() > 90 and first.updated == first.deactivated == 0
    assert (again.created, again.updated, again.unchanged) == (0, 0, first.created)
    tcm = DiagnosisCode.objects.exclude(system="icd10")
    official = {c.code: c.name for c in tcm.filter(edition="GB/T 15657-1995")}
    assert official == CONFIRMED_1995
    local = tcm.exclude(edition="GB/T 15657-1995")
    assert all(c.code.startswith(("QH-D-", "QH-S-")) and c.edition.startswith("local-demo") for c in local)
    assert set(DiagnosisCode.objects.filter(system="icd10").values_list("edition", flat=True)) == {
        "ICD-10 (国家临床版 2.0 naming)"}
    assert DiagnosisCode.objects.get(system="icd10", code="E11.9").name == "2型糖尿病"


def test_search_by_name_initials_or_code_active_only_at_most_20(dr_li, codes):
    assert [c.name for c in diagnosis_codes_search(system="tcm_syndrome", q="pwxh")] == ["脾胃虚寒证"]
    assert [c.code for c in diagnosis_codes_search(q="K29")] == ["K29.5"]
    assert {c.name for c in diagnosis_codes_search(q="便秘")} == {"便秘"} and len(diagnosis_codes_search(q="便秘")) == 2
    DiagnosisCode.objects.filter(name="脾胃虚寒证").update(is_active=False)
    assert diagnosis_codes_search(system="tcm_syndrome", q="脾胃虚寒") == []
    client = staff(dr_li)
    found = client.get("/api/staff/diagnosis-codes", {"system": "tcm_syndrome", "q": "肝"}).json()
    assert found and all(c["system"] == "tcm_syndrome" and "肝" in c["name"] for c in found)
    assert len(client.get("/api/staff/diagnosis-codes").json()) == 20
    bad = client.get("/api/staff/diagnosis-codes", {"system": "icd11"})
    assert bad.status_code == 422 and bad.json()["code"] == "validation_error"
    assert Client().get("/api/staff/diagnosis-codes").status_code == 401


def _write_csv(path, rows):
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["system", "code", "name", "initials", "edition"])
        writer.writerows(rows)
    return str(path)


def test_import_command_upserts_and_deactivates_within_the_files_systems(codes, tmp_path, capsys):
    icd_before = DiagnosisCode.objects.filter(system="icd10", is_active=True).count()
    official = _write_csv(tmp_path / "gbt.csv", [
        ("tcm_disease", "A01.01.01.", "测试病一", "csby", "GB/T 15657-2021"),
        ("tcm_disease", "QH-D-001", "胃脘痛（更名）", "WWTGM", "local-demo"),
    ])
    call_command("import_diagnosis_codes", official)
    assert capsys.readouterr().out.strip() == "created 1, updated 1, unchanged 0, deactivated 0"
    assert DiagnosisCode.objects.get(code="A01.01.01.").initials == "CSBY"
    assert DiagnosisCode.objects.get(code="QH-D-001").name == "胃脘痛（更名）"
    call_command("import_diagnosis_codes", official, "--deactivate-missing")
    remaining = DiagnosisCode.objects.filter(system="tcm_disease", is_active=True)
    assert set(remaining.values_list("code", flat=True)) == {"A01.01.01.", "QH-D-001"}
    assert capsys.readouterr().out.startswith("created 0, updated 0, unchanged 2, deactivated ")
    assert DiagnosisCode.objects.filter(system="icd10", is_active=True).count() == icd_before  # other systems kept
    result = diagnosis_codes_load_bundled()  # listing an entry again reactivates it
    assert result.deactivated == 0 and result.updated > 0
    assert DiagnosisCode.objects.get(system="tcm_disease", code="BNF010").is_active


@pytest.mark.parametrize(("rows", "message"), [
    ([("icd11", "X", "名", "M", "e")], "code_table_invalid"),
    ([("icd10", "", "名", "M", "e")], "code_table_invalid"),
    ([("icd10", "X1", "名", "M", "e"), ("icd10", "X1", "名", "M", "e")], "code_table_duplicate"),
])
def test_import_command_refuses_a_bad_file_and_changes_nothing(db, tmp_path, rows, message):
    path = _write_csv(tmp_path / "bad.csv", rows)
    with pytest.raises(CommandError, match=message):
        call_command("import_diagnosis_codes", path)
    with pytest.raises(CommandError, match="cannot read"):
        call_command("import_diagnosis_codes", str(tmp_path / "missing.csv"))
    assert not DiagnosisCode.objects.exists()
