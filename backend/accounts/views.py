"""Staff web login (Django sessions + CSRF) for the consoles, with lockout."""

from __future__ import annotations

from django.contrib.auth import login, logout
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.http import require_http_methods, require_POST

from backend.accounts.models import Role
from backend.accounts.selectors import user_roles
from backend.accounts.services.staff import staff_authenticate
from backend.core.authz import client_ip
from backend.core.errors import DomainError


def _next_url(request) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()},
                                       require_https=request.is_secure()):
        return target
    return "/staff/"


@csrf_protect
@require_http_methods(["GET", "POST"])
def staff_login(request):
    error, status = "", 200
    username = request.POST.get("username", "")[:150].replace("\x00", "")
    if request.method == "POST":
        try:
            user = staff_authenticate(request=request, username=username,
                                      password=request.POST.get("password", "").replace("\x00", ""),
                                      ip=client_ip(request))
        except DomainError as exc:
            error, status = exc.message, exc.status
        else:
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            return redirect(_next_url(request))
    context = {"error": error, "username": username, "next": _next_url(request)}
    return render(request, "accounts/staff_login.html", context, status=status)


def admin_login(request):
    """The admin has no password form of its own: every staff login goes through the lockout."""
    return redirect_to_login(request.GET.get("next") or "/admin/", login_url="/staff/login/")


@require_POST
def staff_logout(request):
    logout(request)
    return redirect("staff-login")


@login_required
def staff_home(request):
    roles = [Role(r).label for r in sorted(user_roles(request.user))]
    return render(request, "accounts/staff_home.html", {"roles": roles})
