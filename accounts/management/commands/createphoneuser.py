"""manage.py createphoneuser: a user who logs in with a code sent to their phone."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import IntegrityError, transaction

from accounts.models import User
from accounts.phone import InvalidPhoneNumber, mask_phone_number, phone_number_parse


class Command(BaseCommand):
    help = (
        "Create a user who logs in by phone: a code sent to NUMBER opens the account. "
        "The user has no password; set one with `manage.py changepassword` for the admin "
        "or for password + code."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "number",
            help=(
                "The phone number, in international format (+14155550100), or national "
                "when DEFAULT_PHONE_REGION is set."
            ),
        )
        parser.add_argument(
            "--username",
            default="",
            help="Username (default: user-<random>, like accounts made at a first login).",
        )
        parser.add_argument("--email", default="", help="E-mail address (default: none).")
        parser.add_argument(
            "--enable-2fa",
            action="store_true",
            help="Ask for a code after the password too, once the user has a password.",
        )
        parser.add_argument("--staff", action="store_true", help="Let the user into the admin.")
        parser.add_argument(
            "--superuser", action="store_true", help="Give every permission (implies --staff)."
        )

    def handle(self, *args, **options):
        """Create the user, or explain on stderr why not."""
        try:
            number = phone_number_parse(options["number"], region=settings.DEFAULT_PHONE_REGION)
        except InvalidPhoneNumber:
            raise CommandError(
                "Not a valid phone number. Use international format, e.g. +14155550100."
            ) from None
        masked = mask_phone_number(number)
        owner = User.objects.filter(phone_number_for_2fa=number).first()
        if owner is not None:
            raise CommandError(f"{masked} already belongs to the user {owner.username}.")

        user = User(
            username=options["username"] or f"user-{secrets.token_hex(6)}",
            email=options["email"],
            phone_number_for_2fa=number,
            is_2fa_enabled=options["enable_2fa"],
            is_staff=options["staff"] or options["superuser"],
            is_superuser=options["superuser"],
        )
        user.set_unusable_password()
        try:
            user.full_clean(exclude=["password"])
        except ValidationError as exc:
            problems = "; ".join(
                f"{field}: {' '.join(errors)}" for field, errors in exc.message_dict.items()
            )
            raise CommandError(f"Cannot create the user. {problems}") from None
        try:
            with transaction.atomic():
                user.save()
        except IntegrityError:
            # Taken by someone else between the checks above and the save.
            raise CommandError(
                "Cannot create the user: the username or the phone number was just taken."
            ) from None

        self.stdout.write(
            self.style.SUCCESS(f"Created the user {user.username} with the phone {masked}.")
        )
        if user.is_staff or user.is_2fa_enabled:
            self.stdout.write(
                "The admin and password + code both start with a password: set one with "
                f"`manage.py changepassword {user.username}`."
            )
