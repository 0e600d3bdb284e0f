from django.core.management.base import BaseCommand

from backend.demo.seed import seed_demo


class Command(BaseCommand):
    help = "Seed the demo hospital (idempotent): departments, staff, demo patients."

    def handle(self, *args, **options):
        logins = seed_demo()
        self.stdout.write(self.style.SUCCESS(f"demo hospital seeded ({len(logins)} staff logins)"))
