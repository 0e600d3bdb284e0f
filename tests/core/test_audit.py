"""The SM3 hash-chained audit log and its verification command."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, transaction

from backend.core.audit import audit_record, audit_verify_chain
from backend.core.models import AuditEvent
from backend.core.tasks import audit_chain_verify


def _five_rows():
    for i in range(5):
        audit_record(action="test.action", object_type="test", object_id=str(i), detail={"n": i, "名": "王"})


def test_rows_are_chained(db):
    _five_rows()
    rows = list(AuditEvent.objects.all())
    assert [r.seq for r in rows] == [1, 2, 3, 4, 5]
    assert rows[0].prev_hash == "0" * 64
    assert all(rows[i].prev_hash == rows[i - 1].row_hash for i in range(1, 5))
    report = audit_verify_chain()
    assert report.ok and report.checked == 5


def test_command_reports_an_intact_chain(db, capsys):
    _five_rows()
    call_command("verify_audit_chain")
    assert "5 rows verified" in capsys.readouterr().out


def _raw(sql: str, params: list) -> None:
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE core_auditevent DISABLE TRIGGER core_auditevent_no_update_delete")
        cursor.execute(sql, params)
        cursor.execute("ALTER TABLE core_auditevent ENABLE TRIGGER core_auditevent_no_update_delete")


def test_command_names_the_first_tampered_row(db):
    _five_rows()
    third = AuditEvent.objects.get(seq=3)
    _raw("UPDATE core_auditevent SET detail = %s WHERE id = %s", ['{"n": 99, "名": "王"}', third.id])
    with pytest.raises(CommandError, match=rf"seq 3 \(row id {third.id}\).*does not match its hash"):
        call_command("verify_audit_chain")
    assert audit_chain_verify() == {"ok": False, "checked": 2, "first_broken_seq": 3}


def test_a_deleted_row_is_detected(db):
    _five_rows()
    _raw("DELETE FROM core_auditevent WHERE seq = %s", [2])
    report = audit_verify_chain()
    assert report.first_broken_seq == 2 and "missing" in report.reason


def test_rewriting_a_row_with_a_fresh_hash_breaks_the_next_link(db):
    from backend.core.audit import row_hash_of

    _five_rows()
    second = AuditEvent.objects.get(seq=2)
    second.action = "test.forged"
    forged_hash = row_hash_of(second)
    _raw("UPDATE core_auditevent SET action = %s, row_hash = %s WHERE id = %s",
         ["test.forged", forged_hash, second.id])
    report = audit_verify_chain()
    assert report.first_broken_seq == 3 and "prev_hash" in report.reason


def test_removing_the_newest_rows_is_detected(db):
    _five_rows()
    _raw("DELETE FROM core_auditevent WHERE seq >= %s", [4])
    report = audit_verify_chain()
    assert not report.ok and report.first_broken_seq == 4


def test_the_log_is_append_only(db):
    _five_rows()
    row = AuditEvent.objects.get(seq=1)
    with pytest.raises(TypeError):
        row.save()
    with pytest.raises(TypeError):
        row.delete()
    with pytest.raises(TypeError):
        AuditEvent.objects.filter(seq=1).update(action="x")
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE core_auditevent SET action = 'x' WHERE seq = 1")
    assert AuditEvent.objects.get(seq=1).action == "test.action"


def test_the_actor_label_is_covered_by_the_hash(db):
    _five_rows()
    _raw("UPDATE core_auditevent SET actor_label = %s WHERE seq = %s", ["someone_else", 4])
    assert audit_verify_chain().first_broken_seq == 4


def test_floats_in_detail_do_not_break_the_chain_on_postgresql(db):
    audit_record(action="test.float", detail={"big": 1e20, "small": 0.1, "nested": [1.5, {"x": 2.0}]})
    assert audit_verify_chain().ok
