"""Re-encrypt personal data still under a retired key, after FIELD_ENCRYPTION_KEYS got a new first key.

Rotation: put the new key first (``k2:...,k1:...``), deploy, run this command, then drop ``k1``.
"""

from django.apps import apps
from django.core.management.base import BaseCommand
from django.db import transaction

from backend.core.crypto import Ciphertext, ciphertext_kid, keyring
from backend.core.fields import BlindIndexField, EncryptedTextField


class Command(BaseCommand):
    help = "Re-encrypt every encrypted field whose key id is not the active key."

    def handle(self, *args, **options):
        active = keyring().active_kid
        total = 0
        for model in apps.get_models():
            encrypted = [f.attname for f in model._meta.fields if isinstance(f, EncryptedTextField)]
            if not encrypted:
                continue
            derived = [f.attname for f in model._meta.fields if isinstance(f, BlindIndexField)]
            for pk in model._base_manager.values_list("pk", flat=True).iterator(chunk_size=500):
                with transaction.atomic():  # locked, so a concurrent edit is not overwritten
                    obj = model._base_manager.select_for_update().get(pk=pk)
                    stale = [name for name in encrypted if isinstance(obj.__dict__.get(name), Ciphertext)
                             and ciphertext_kid(obj.__dict__[name]) != active]
                    if stale:
                        for name in stale:
                            getattr(obj, name)  # decrypt with the old key while it is still listed
                        obj.save(update_fields=[*encrypted, *derived])
                        total += 1
            self.stdout.write(f"{model._meta.label}: checked")
        self.stdout.write(self.style.SUCCESS(f"re-encrypted {total} rows under key {active}"))
