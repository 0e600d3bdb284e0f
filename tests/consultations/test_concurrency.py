"""Races on PostgreSQL: gap-free message numbers under concurrent senders; one doctor wins a pool visit."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connections

from backend.consultations.models import ConsentTerms, Message, OnlineService
from backend.consultations.services.eligibility import StartRequest, consultation_start
from backend.consultations.services.lifecycle import consultation_accept
from backend.consultations.services.messages import message_post
from backend.core.errors import Conflict
from tests.consultations.helpers import TERMS_VERSION, consent_terms, in_progress, offline_visit, paid
from tests.scheduling.helpers import patient_account


def _threads(fn, n: int) -> list:
    def run(i: int):
        try:
            return fn(i)
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(run, range(n)))


@pytest.mark.django_db(transaction=True)
def test_forty_concurrent_messages_get_forty_distinct_consecutive_numbers(dr_li, settings):
    settings.CONSULT_MESSAGE_RATE = "1000/60"
    user, patient = patient_account("race")
    c = in_progress(user, patient, dr_li)
    base = c.last_seq

    def send(i: int) -> int:
        who = user if i % 2 else dr_li
        return message_post(user=who, consultation_id=c.pk, kind="text", body=f"#{i}", client_msg_id=f"c{i}")[0].seq

    seqs = _threads(send, 40)
    assert sorted(seqs) == list(range(base + 1, base + 41))
    stored = list(Message.objects.filter(consultation=c).order_by("seq").values_list("seq", flat=True))
    assert stored == list(range(1, base + 41))


@pytest.mark.django_db(transaction=True)
def test_two_doctors_race_for_a_pool_visit_one_wins(dr_li, dr_wu, departments):
    other = dr_wu
    consent_terms()
    pool = OnlineService.objects.create(department=departments["internal"], kind="text", fee_fen=2500)
    user, patient = patient_account("pool")
    c = paid(consultation_start(account=user, ip="", req=StartRequest(
        patient_id=patient.pk, service_id=pool.pk, terms_version=TERMS_VERSION,
        offline_visit_id=offline_visit(patient).pk)))
    assert c.doctor_id is None and ConsentTerms.objects.count() == 1

    def accept(i: int) -> str:
        try:
            return str(consultation_accept(user=[dr_li, other][i % 2], consultation_id=c.pk).doctor_id)
        except Conflict as exc:
            return exc.code

    outcomes = _threads(accept, 6)
    c.refresh_from_db()
    winners = [o for o in outcomes if o != "consultation_not_waiting"]
    assert c.status == "in_progress" and set(winners) == {str(c.doctor_id)}
    assert outcomes.count("consultation_not_waiting") >= 1
