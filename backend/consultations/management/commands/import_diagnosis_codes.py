import csv as csv_module

from django.core.management.base import BaseCommand, CommandError

from backend.consultations.services.records import diagnosis_codes_import_csv
from backend.core.errors import ValidationFailed


class Command(BaseCommand):
    help = ("Import a diagnosis code table (CSV columns: system,code,name,initials,edition), upserting by "
            "(system, code). With --deactivate-missing, entries of the file's systems that it no longer lists "
            "are deactivated.")

    def add_arguments(self, parser):
        parser.add_argument("csv", help="path of the CSV file (UTF-8)")
        parser.add_argument("--deactivate-missing", action="store_true",
                            help="deactivate entries of the same systems that the file does not list")

    def handle(self, *args, csv: str, deactivate_missing: bool, **options):
        try:
            result = diagnosis_codes_import_csv(csv, deactivate_missing=deactivate_missing)
        except (OSError, UnicodeDecodeError, csv_module.Error) as exc:
            raise CommandError(f"cannot read {csv}: {exc}") from exc
        except ValidationFailed as exc:
            raise CommandError(f"{exc.code}: {exc.message} {exc.detail}") from exc
        self.stdout.write(self.style.SUCCESS(
            f"created {result.created}, updated {result.updated}, unchanged {result.unchanged}, "
            f"deactivated {result.deactivated}"))
