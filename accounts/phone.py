"""Phone numbers: parse what people type into E.164, and mask numbers for display and logs."""

from __future__ import annotations

import functools

import phonenumbers

# Longer input is refused before it reaches the parser: no real number is
# anywhere near this long, even with spaces and punctuation.
MAX_INPUT_LENGTH = 32
MASK = "\u2022"


class InvalidPhoneNumber(ValueError):
    """The text is not a valid, dialable phone number."""


def phone_number_parse(value: str, *, region: str | None = None) -> str:
    """Return `value` as an E.164 string, or raise InvalidPhoneNumber."""
    value = (value or "").strip()
    if not value or len(value) > MAX_INPUT_LENGTH:
        raise InvalidPhoneNumber(value)
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhoneNumber(value) from exc
    if not phonenumbers.is_valid_number(number):
        raise InvalidPhoneNumber(value)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


@functools.lru_cache(maxsize=4096)
def phone_number_facts(e164: str) -> tuple[str, int, str, int]:
    """Return the region, country code, national number and type of an E.164 number.

    Cached: one login parses the same number for the form, the defences, the
    limits and every masked log line.
    """
    number = phonenumbers.parse(e164, None)
    return (
        phonenumbers.region_code_for_number(number),
        number.country_code,
        phonenumbers.national_significant_number(number),
        phonenumbers.number_type(number),
    )


def mask_phone_number(e164) -> str:
    """Return the number in international format with its middle digits hidden.

    "+14155550100" becomes "+1 415 ••• ••00": enough for a person to recognise
    their own phone, not enough to learn someone else's.
    """
    return _mask(str(e164))


@functools.lru_cache(maxsize=4096)
def _mask(e164: str) -> str:
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return MASK * 4
    national = str(number.national_number)
    # At least half the national digits stay hidden, however short the number.
    head = 3 if len(national) >= 9 else 1 if len(national) >= 7 else 0
    tail = 2 if len(national) >= 6 else 1
    formatted = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    prefix = f"+{number.country_code}"
    rest = formatted[len(prefix) :]
    masked, index = [], 0
    for char in rest:
        if char.isdigit():
            visible = index < head or index >= len(national) - tail
            masked.append(char if visible else MASK)
            index += 1
        else:
            masked.append(" ")
    return prefix + "".join(masked)
