"""Staff surface of consultations (session auth): the doctor console's queue and visit actions, the record."""

from ninja import Router

from backend.consultations.api import records, visits

router = Router()
router.add_router("", visits.router)
router.add_router("", records.router)
