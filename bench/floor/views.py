from __future__ import annotations

import re
import secrets
import sys

from django.contrib.auth import get_user_model, login
from django.shortcuts import redirect, render
from django.utils.crypto import constant_time_compare, salted_hmac

NUMBER = re.compile(r"\+[1-9]\d{7,14}")
PENDING = "floor_pending"


def _hash(code: str) -> str:
    return salted_hmac("floor", code, algorithm="sha256").hexdigest()


def login_view(request):
    if request.method == "POST":
        number = request.POST.get("number", "")
        if not NUMBER.fullmatch(number):
            return render(request, "floor/login.html", {"error": True})
        code = f"{secrets.randbelow(10**6):06d}"
        request.session[PENDING] = {"number": number, "code": _hash(code)}
        sys.stdout.write(f"[sms to {number}] code: {code}\n")
        sys.stdout.flush()
        return redirect("/verify/")
    return render(request, "floor/login.html")


def verify_view(request):
    pending = request.session.get(PENDING)
    if pending is None:
        return redirect("/login/")
    if request.method == "POST":
        if not constant_time_compare(_hash(request.POST.get("code", "")), pending["code"]):
            return redirect("/verify/")
        user, _created = get_user_model().objects.get_or_create(username=pending["number"])
        del request.session[PENDING]
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        return redirect("/")
    return render(request, "floor/verify.html")


def home(request):
    return render(request, "floor/home.html")
