"""Start every gateway sandbox at once: in a test, in the demo, or in the foreground.

    python -m backend.gateways.sandboxes --wechat-port 18601 --realname-port 18602

With ``DJANGO_SETTINGS_MODULE`` set, the appid, keys and secrets come from the Django settings
(so the sandboxes accept exactly what the backend sends); otherwise from the command line.
The sandboxes keep their state in memory; drive them through ``WeChatSandboxControl`` /
``RealNameSandboxControl`` (HTTP) from another process.
"""

from __future__ import annotations

import argparse
import os
import signal
import threading
from dataclasses import dataclass
from typing import Any

from backend.gateways.loopback import SandboxControl
from backend.gateways.realname.sandbox import RealNameSandbox
from backend.gateways.wechat.sandbox import WeChatSandbox

DEFAULT_WECHAT_APPID = "wx5a1d0c2e7f3b9d41"
DEFAULT_REALNAME_KEY = "qihuang-demo"


@dataclass
class Sandboxes:
    wechat: WeChatSandbox
    realname: RealNameSandbox

    def stop(self) -> None:
        self.wechat.stop()
        self.realname.stop()

    def reset(self) -> None:
        self.wechat.reset()
        self.realname.reset()


def start_sandboxes(
    host: str = "127.0.0.1",
    wechat_port: int = 0,
    realname_port: int = 0,
    *,
    wechat_appid: str = DEFAULT_WECHAT_APPID,
    wechat_secret: str,
    realname_key: str = DEFAULT_REALNAME_KEY,
    realname_secret: str,
) -> Sandboxes:
    """Start both sandboxes (port 0 = a free port); ``stop()`` the result when done."""
    wechat = WeChatSandbox(wechat_appid, wechat_secret).start(host, wechat_port)
    try:
        realname = RealNameSandbox(realname_key, realname_secret).start(host, realname_port)
    except BaseException:
        wechat.stop()
        raise
    return Sandboxes(wechat=wechat, realname=realname)


class WeChatSandboxControl(SandboxControl):
    """The WeChat sandbox's controls over HTTP, with the same names as its Python methods."""

    def issue_login_code(self, openid: str, unionid: str | None = None) -> str:
        return self.call("POST", "login-code", {"openid": openid, "unionid": unionid})["code"]

    def issue_phone_code(self, phone: str, country_code: str = "86") -> str:
        return self.call("POST", "phone-code", {"phone": phone, "country_code": country_code})["code"]

    def encrypted_phone(
        self, openid: str, phone: str, country_code: str = "86", appid: str | None = None
    ) -> dict[str, str]:
        spec = {"openid": openid, "phone": phone, "country_code": country_code, "appid": appid}
        return self.call("POST", "encrypted-phone", spec)

    def grant_subscription(self, openid: str, template_id: str, times: int = 1) -> None:
        self.call("POST", "subscribe", {"openid": openid, "template_id": template_id, "times": times})

    def revoke_tokens(self, expired: bool = False) -> None:
        self.call("POST", "revoke-tokens", {"expired": expired})

    def messages(self) -> list[dict[str, Any]]:
        return self.call("GET", "messages")


class RealNameSandboxControl(SandboxControl):
    """The real-name sandbox's controls over HTTP."""

    def add_person(self, name: str, id_number: str) -> None:
        self.add_people([{"name": name, "id_number": id_number}])

    def add_people(self, people: list[dict[str, str]]) -> None:
        self.call("POST", "people", people)

    def requests(self) -> list[dict[str, Any]]:
        return self.call("GET", "requests")


def _credentials(args: argparse.Namespace) -> dict[str, str]:
    if os.environ.get("DJANGO_SETTINGS_MODULE"):
        import django
        from django.conf import settings

        django.setup()
        return {
            "wechat_appid": settings.WECHAT_APPID,
            "wechat_secret": settings.WECHAT_APP_SECRET,
            "realname_key": settings.REALNAME_APP_KEY,
            "realname_secret": settings.REALNAME_APP_SECRET,
        }
    missing = [name for name in ("wechat_secret", "realname_secret") if not getattr(args, name)]
    if missing:
        raise SystemExit(
            f"without DJANGO_SETTINGS_MODULE, give --{' and --'.join(m.replace('_', '-') for m in missing)}"
        )
    return {
        "wechat_appid": args.wechat_appid,
        "wechat_secret": args.wechat_secret,
        "realname_key": args.realname_key,
        "realname_secret": args.realname_secret,
    }


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Run the WeChat and real-name sandboxes in the foreground.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--wechat-port", type=int, default=18601)
    parser.add_argument("--realname-port", type=int, default=18602)
    parser.add_argument("--wechat-appid", default=DEFAULT_WECHAT_APPID)
    parser.add_argument("--wechat-secret")
    parser.add_argument("--realname-key", default=DEFAULT_REALNAME_KEY)
    parser.add_argument("--realname-secret")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    sandboxes = start_sandboxes(args.host, args.wechat_port, args.realname_port, **_credentials(args))
    print(f"WeChat sandbox    {sandboxes.wechat.base_url}  (appid {sandboxes.wechat.appid})", flush=True)
    print(
        f"real-name sandbox {sandboxes.realname.base_url}  (app key {sandboxes.realname.app_key})", flush=True
    )
    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())
    stopping.wait()
    sandboxes.stop()


if __name__ == "__main__":
    main()
