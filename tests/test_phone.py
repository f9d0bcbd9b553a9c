import pytest

from accounts.phone import (
    MASK,
    MAX_INPUT_LENGTH,
    InvalidPhoneNumber,
    mask_phone_number,
    phone_number_parse,
)


@pytest.mark.parametrize(
    ("typed", "e164"),
    [
        ("+14155550100", "+14155550100"),
        ("+1 415 555 0100", "+14155550100"),
        ("+1 (415) 555-0100", "+14155550100"),
        ("  +1.415.555.0100  ", "+14155550100"),
        ("+44 20 7946 0018", "+442079460018"),
        ("+33 6 12 34 56 78", "+33612345678"),
        ("tel:+14155550100", "+14155550100"),
    ],
)
def test_international_input_parses_to_e164(typed, e164):
    assert phone_number_parse(typed) == e164


@pytest.mark.parametrize(
    ("typed", "region", "e164"),
    [
        ("020 7946 0018", "GB", "+442079460018"),
        ("(415) 555-0100", "US", "+14155550100"),
        ("00 1 415 555 0100", "GB", "+14155550100"),
        # A region does not stop people from typing international numbers.
        ("+33 6 12 34 56 78", "GB", "+33612345678"),
    ],
)
def test_national_input_parses_with_a_default_region(typed, region, e164):
    assert phone_number_parse(typed, region=region) == e164


def test_national_input_is_refused_without_a_region():
    with pytest.raises(InvalidPhoneNumber):
        phone_number_parse("020 7946 0018")


@pytest.mark.parametrize(
    "typed",
    [
        "",
        "   ",
        "hello",
        "+",
        "++",
        "+999 123456",  # no such country code
        "+44 20",  # too short
        "+1 415 555 01000",  # one digit too many
        "+1 415 000 0000",  # not a number that exists in the plan
        "+1415\x075550100",  # a control character in the middle
        "+1415\x005550100",
        "<script>alert(1)</script>",
        "1; DROP TABLE accounts_user",
    ],
)
def test_garbage_is_refused(typed):
    with pytest.raises(InvalidPhoneNumber):
        phone_number_parse(typed)


def test_none_is_refused():
    with pytest.raises(InvalidPhoneNumber):
        phone_number_parse(None)


def test_overlong_input_is_refused_before_parsing():
    # Valid digits padded with separators past the limit: refused on length alone.
    typed = "+1 415 555 0100" + "-" * (MAX_INPUT_LENGTH - len("+1 415 555 0100") + 1)
    assert len(typed) == MAX_INPUT_LENGTH + 1
    with pytest.raises(InvalidPhoneNumber):
        phone_number_parse(typed)


def test_very_long_input_is_refused():
    with pytest.raises(InvalidPhoneNumber):
        phone_number_parse("+1" + "4" * 100_000)


def test_input_at_the_length_limit_still_parses():
    typed = "+1 415 555 0100".ljust(MAX_INPUT_LENGTH)
    assert len(typed) == MAX_INPUT_LENGTH
    assert phone_number_parse(typed) == "+14155550100"


@pytest.mark.parametrize(
    ("typed", "e164"),
    [
        ("+\uff11 \uff14\uff11\uff15 \uff15\uff15\uff15 \uff10\uff11\uff10\uff10", "+14155550100"),
        (
            "+\u0669\u0667\u0661\u0665\u0660\u0661\u0662\u0663\u0664\u0665\u0666\u0667",
            "+971501234567",
        ),
    ],
)
def test_unicode_digits_come_out_as_ascii_e164(typed, e164):
    parsed = phone_number_parse(typed)
    assert parsed == e164
    assert parsed.isascii()


def test_invalid_phone_number_is_a_value_error():
    # Callers that only know ValueError still catch it.
    with pytest.raises(ValueError):
        phone_number_parse("hello")


@pytest.mark.parametrize(
    ("e164", "masked"),
    [
        ("+14155550100", "+1 415 ••• ••00"),
        ("+14155551299", "+1 415 ••• ••99"),
        ("+442079460018", "+44 20 7••• ••18"),
        ("+33612345678", "+33 6 12 •• •• 78"),
        ("+4930123456", "+49 3• ••••56"),
    ],
)
def test_mask_shows_country_code_first_and_last_digits(e164, masked):
    assert mask_phone_number(e164) == masked


@pytest.mark.parametrize("e164", ["+14155550100", "+442079460018", "+33612345678", "+4930123456"])
def test_mask_hides_the_middle_of_the_number(e164):
    masked = mask_phone_number(e164)
    hidden = masked.count(MASK)
    shown = sum(char.isdigit() for char in masked)
    # One mask character per hidden digit: the length of the number can be
    # read, its middle cannot.
    assert hidden >= 3
    assert shown + hidden == len(e164) - 1
    assert e164[1:] not in masked.replace(" ", "")


def test_mask_never_fails_on_garbage():
    assert mask_phone_number("garbage") == MASK * 4
    assert mask_phone_number("") == MASK * 4


def test_mask_accepts_a_phone_number_object():
    from phonenumber_field.phonenumber import PhoneNumber

    assert mask_phone_number(PhoneNumber.from_string("+14155550100")) == "+1 415 ••• ••00"
