"""Model fields that keep personal data encrypted at rest.

``EncryptedTextField`` stores SM4-GCM ciphertext bound to the row's primary key
(which must be assigned before saving: use a UUID primary key with a default).
On the instance the attribute reads and writes plaintext; the database column only
ever holds ciphertext. ``BlindIndexField`` keeps the keyed hash of another field's
normalised plaintext for exact-match lookups.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db import models

from backend.core.crypto import Ciphertext, blind_index, sm4_gcm_decrypt, sm4_gcm_encrypt

_PLAIN = "_plain_"


def _aad(instance: models.Model, field_name: str) -> bytes:
    if instance.pk is None:
        raise ValueError("encrypted fields need the primary key assigned before saving")
    return f"{instance._meta.label_lower}.{field_name}:{instance.pk}".encode()


class _EncryptedAttribute:
    """Descriptor: plaintext on the instance, ciphertext in ``__dict__`` until read."""

    def __init__(self, field: EncryptedTextField) -> None:
        self.field = field

    def __get__(self, instance: models.Model | None, owner: type) -> Any:
        if instance is None:
            return self
        name = self.field.attname
        plain_key = _PLAIN + name
        if plain_key in instance.__dict__:
            return instance.__dict__[plain_key]
        stored = instance.__dict__.get(name)
        if isinstance(stored, Ciphertext):
            plain = sm4_gcm_decrypt(stored, _aad(instance, name))
            instance.__dict__[plain_key] = plain
            return plain
        return stored

    def __set__(self, instance: models.Model, value: Any) -> None:
        name = self.field.attname
        instance.__dict__.pop(_PLAIN + name, None)
        if isinstance(value, Ciphertext) or value is None or value == "":
            instance.__dict__[name] = value
        else:
            instance.__dict__[_PLAIN + name] = str(value)
            instance.__dict__[name] = None


class EncryptedTextField(models.TextField):
    description = "SM4-GCM encrypted text"

    def contribute_to_class(self, cls: type[models.Model], name: str, **kwargs: Any) -> None:
        super().contribute_to_class(cls, name, **kwargs)
        setattr(cls, self.attname, _EncryptedAttribute(self))

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        return Ciphertext(value) if value else value

    def pre_save(self, model_instance: models.Model, add: bool) -> Any:
        plain = getattr(model_instance, self.attname)
        if plain is None or plain == "":
            return plain
        return sm4_gcm_encrypt(plain, _aad(model_instance, self.attname))

    def get_prep_value(self, value: Any) -> Any:
        if value is None or value == "" or isinstance(value, Ciphertext):
            return value
        raise TypeError("encrypted fields cannot be queried by plaintext; use the blind index")


class BlindIndexField(models.CharField):
    """Keyed hash of ``source``'s normalised plaintext; recomputed on every save."""

    def __init__(self, *args: Any, source: str = "", purpose: str = "",
                 normalize: Callable[[str], str] | None = None, **kwargs: Any) -> None:
        self.source, self.purpose, self.normalize = source, purpose, normalize
        kwargs.setdefault("max_length", 64)
        kwargs.setdefault("editable", False)
        kwargs.setdefault("blank", True)
        kwargs.setdefault("db_index", True)
        super().__init__(*args, **kwargs)

    def deconstruct(self) -> tuple[Any, ...]:
        name, path, args, kwargs = super().deconstruct()
        kwargs.update(source=self.source, purpose=self.purpose)
        return name, path, args, kwargs

    def pre_save(self, model_instance: models.Model, add: bool) -> Any:
        plain = getattr(model_instance, self.source)
        value = self.index_of(plain) if plain else ""
        setattr(model_instance, self.attname, value)
        return value

    def index_of(self, plain: str) -> str:
        normalized = self.normalize(plain) if self.normalize else plain
        return blind_index(normalized, self.purpose or self.source)
