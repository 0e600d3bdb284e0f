"""Reading settings from the environment, with the embedded demo defaults.

Nothing secret lives in code. When a secret is not in the environment and the
deployment is not production, a random value is generated once and kept in the
local state directory (``QIHUANG_STATE_DIR``, default ``.data/``), so a demo
restart keeps its sessions and can still decrypt its own data.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent.parent


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default).strip()


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}") from exc


def env_list(name: str, default: list[str] | None = None) -> list[str]:
    raw = os.environ.get(name, "")
    items = [part.strip() for part in raw.split(",") if part.strip()]
    return items or list(default or [])


def state_dir() -> Path:
    path = Path(env_str("QIHUANG_STATE_DIR", str(BASE_DIR / ".data")))
    path.mkdir(parents=True, exist_ok=True)
    return path


def _rsa_private_pem() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def _local_secrets(production: bool) -> dict[str, str]:
    if production:
        return {}
    path = state_dir() / "local-secrets.json"
    data: dict[str, str] = {}
    if path.exists():
        data = json.loads(path.read_text())
    wanted = {
        "DJANGO_SECRET_KEY": lambda: secrets.token_urlsafe(50),
        "FIELD_ENCRYPTION_KEYS": lambda: "k1:" + base64.b64encode(secrets.token_bytes(16)).decode(),
        "BLIND_INDEX_KEY": lambda: base64.b64encode(secrets.token_bytes(32)).decode(),
        "WECHAT_APP_SECRET": lambda: secrets.token_hex(16),
        "REALNAME_APP_SECRET": lambda: secrets.token_hex(16),
        "WECHATPAY_MERCHANT_PRIVATE_KEY": _rsa_private_pem,
        "WECHATPAY_APIV3_KEY": lambda: secrets.token_hex(16),  # 32 characters, as WeChat Pay requires
        "ALIPAY_APP_PRIVATE_KEY": _rsa_private_pem,
        "HIS_IMPORT_TOKEN": lambda: secrets.token_urlsafe(32),
        "TURN_SHARED_SECRET": lambda: secrets.token_urlsafe(32),
    }
    changed = False
    for key, make in wanted.items():
        if key not in data:
            data[key] = make()
            changed = True
    if changed:
        path.write_text(json.dumps(data, indent=2))
        path.chmod(0o600)
    return data


def secret(name: str, production: bool) -> str:
    """A secret from the environment; outside production, a generated local one."""
    value = env_str(name)
    if value:
        return value
    if production:
        raise ImproperlyConfigured(f"{name} must be set in production (see .env.example)")
    return _local_secrets(production)[name]
