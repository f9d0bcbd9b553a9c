import pytest

from flows.forms import CodeForm, PhoneLoginForm

INTERNATIONAL_HELP = (
    "Enter a valid phone number in international format, starting with + "
    "and the country code, e.g. +1 415 555 0100."
)
REGIONAL_HELP = (
    "Enter a valid phone number, e.g. 020 7946 0018, or in international format starting with +."
)


def number_errors(data):
    form = PhoneLoginForm(data=data)
    assert not form.is_valid()
    return form.errors["number"]


def code_errors(data):
    form = CodeForm(data=data)
    assert not form.is_valid()
    return form.errors["code"]


# PhoneLoginForm ------------------------------------------------------------


@pytest.mark.parametrize("typed", ["+14155550100", "+1 (415) 555-0100", " +1 415 555 0100 "])
def test_number_cleans_to_e164(typed):
    form = PhoneLoginForm(data={"number": typed})
    assert form.is_valid(), form.errors
    assert form.cleaned_data["number"] == "+14155550100"


def test_number_with_unicode_digits_cleans_to_ascii_e164():
    form = PhoneLoginForm(
        data={"number": "+\uff11 \uff14\uff11\uff15 \uff15\uff15\uff15 \uff10\uff11\uff10\uff10"}
    )
    assert form.is_valid(), form.errors
    assert form.cleaned_data["number"] == "+14155550100"


@pytest.mark.parametrize("data", [{}, {"number": ""}, {"number": "    "}])
def test_empty_or_missing_number_asks_for_one(data):
    assert number_errors(data) == ["Enter your phone number."]


@pytest.mark.parametrize(
    "typed", ["hello", "+", "12345", "+999 123456", "+1 415 555 01000", "020 7946 0018"]
)
def test_invalid_number_explains_the_international_format(typed, settings):
    settings.DEFAULT_PHONE_REGION = None
    assert number_errors({"number": typed}) == [INTERNATIONAL_HELP]


def test_national_number_is_accepted_with_a_default_region(settings):
    settings.DEFAULT_PHONE_REGION = "GB"
    form = PhoneLoginForm(data={"number": "020 7946 0018"})
    assert form.is_valid(), form.errors
    assert form.cleaned_data["number"] == "+442079460018"


def test_invalid_number_with_a_default_region_gives_a_national_example(settings):
    settings.DEFAULT_PHONE_REGION = "GB"
    assert number_errors({"number": "020 79"}) == [REGIONAL_HELP]


def test_overlong_number_is_refused_with_its_length():
    typed = "+1 415 555 0100" + " 0" * 20
    assert number_errors({"number": typed}) == [
        f"Ensure this value has at most 32 characters (it has {len(typed)})."
    ]


def test_null_byte_in_number_is_refused():
    assert number_errors({"number": "+1415\x005550100"}) == ["Null characters are not allowed."]


def test_control_character_in_number_is_refused():
    assert number_errors({"number": "+1415\x075550100"}) == [INTERNATIONAL_HELP]


def test_number_field_is_a_phone_input():
    html = str(PhoneLoginForm()["number"])
    assert 'name="number"' in html
    assert 'type="tel"' in html
    assert 'autocomplete="tel"' in html
    assert 'maxlength="32"' in html
    assert PhoneLoginForm()["number"].label == "Phone number"


# CodeForm ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "code"),
    [
        ("123456", "123456"),
        (" 123456 ", "123456"),
        ("123 456", "123456"),
        ("12 34 56", "123456"),
        ("123-456", "123456"),
        ("123\t456", "123456"),
        ("123\u00a0456", "123456"),
        ("000000", "000000"),
    ],
)
def test_code_with_spaces_or_dashes_cleans_to_its_digits(typed, code):
    form = CodeForm(data={"code": typed})
    assert form.is_valid(), form.errors
    assert form.cleaned_data["code"] == code


@pytest.mark.parametrize("data", [{}, {"code": ""}, {"code": "   "}])
def test_empty_or_missing_code_asks_for_it(data):
    assert code_errors(data) == ["Enter the code from the message."]


@pytest.mark.parametrize(
    "typed",
    [
        "12345",  # too short
        "1234567",  # too long
        "abcdef",
        "12345a",
        "12.456",
        "+12345",
        "-123456-x",
        "\uff11\uff12\uff13\uff14\uff15\uff16",  # full-width digits
        "\u0661\u0662\u0663\u0664\u0665\u0666",  # Arabic-Indic digits
        "12345\u00b2",  # superscript two: isdigit() but not a digit you can type
        "123\x07456",
    ],
)
def test_code_of_wrong_shape_says_how_many_digits(typed):
    assert code_errors({"code": typed}) == ["Enter the 6-digit code from the message, digits only."]


def test_code_length_follows_the_setting(settings):
    settings.VERIFY_CODE_LENGTH = 8
    assert code_errors({"code": "123456"}) == [
        "Enter the 8-digit code from the message, digits only."
    ]
    form = CodeForm(data={"code": "1234 5678"})
    assert form.is_valid(), form.errors
    assert form.cleaned_data["code"] == "12345678"


def test_null_byte_in_code_is_refused():
    assert code_errors({"code": "123\x00456"}) == ["Null characters are not allowed."]


def test_overlong_code_is_refused_with_its_length():
    typed = "1" * 21
    assert code_errors({"code": typed}) == [
        "Ensure this value has at most 20 characters (it has 21)."
    ]


def test_code_field_is_a_one_time_code_input():
    html = str(CodeForm()["code"])
    assert 'name="code"' in html
    assert 'inputmode="numeric"' in html
    assert 'autocomplete="one-time-code"' in html
    assert CodeForm()["code"].label == "Code"
