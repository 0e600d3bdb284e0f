"""The doctor console's pages (医生工作台): server-rendered shells; the data comes from the staff API
(/api/staff/...) and the WebSockets, fetched by a little JavaScript (static/consultations/)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import render
from django.utils.translation import gettext as _t
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_GET

from backend.accounts.models import DoctorProfile
from backend.consultations.selectors import consultation_for_doctor, doctor_of
from backend.consultations.states import ConsultKind, ConsultStatus, EligibilityStatus, ProofKind
from backend.core import errors


def _doctor(request) -> DoctorProfile:
    try:
        return doctor_of(request.user)
    except errors.PermissionDenied as exc:
        raise PermissionDenied(exc.message) from exc


def _labels() -> dict[str, dict[str, str]]:
    """Display names for the codes the API returns (one source: the model choices)."""
    def of(choices) -> dict[str, str]:
        return {str(value): str(label) for value, label in choices.choices}

    return {"status": of(ConsultStatus), "kind": of(ConsultKind), "eligibility": of(EligibilityStatus),
            "proof_kind": of(ProofKind),
            "kind_short": {ConsultKind.TEXT.value: _t("图文"), ConsultKind.VIDEO.value: _t("视频")}}


def _page(request, template: str, **context):
    return render(request, f"consultations/{template}", {"labels": _labels(), **context})


@require_GET
@login_required
@ensure_csrf_cookie
def queue_page(request):
    """今日队列: waiting and in-progress visits, own and the department pool, updated live."""
    doctor = _doctor(request)
    return _page(request, "console_queue.html", doctor=doctor)


@require_GET
@login_required
@ensure_csrf_cookie
def consultation_page(request, consultation_id):
    """One visit: patient summary, chat, the clinical record. Another doctor's visit is 404 (not disclosed)."""
    doctor = _doctor(request)
    try:
        consultation = consultation_for_doctor(doctor=doctor, consultation_id=consultation_id)
    except errors.NotFound as exc:
        raise Http404(exc.message) from exc
    return _page(request, "console_visit.html", doctor=doctor, consultation=consultation)
