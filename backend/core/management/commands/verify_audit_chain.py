from django.core.management.base import BaseCommand, CommandError

from backend.core.audit import audit_verify_chain


class Command(BaseCommand):
    help = "Verify the SM3 hash chain of the audit log; name the first broken row."

    def handle(self, *args, **options):
        report = audit_verify_chain()
        if not report.ok:
            raise CommandError(
                f"audit chain broken at seq {report.first_broken_seq} (row id {report.first_broken_id}): "
                f"{report.reason}; {report.checked} rows before it verified"
            )
        self.stdout.write(self.style.SUCCESS(f"audit chain intact: {report.checked} rows verified"))
