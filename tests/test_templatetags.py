import re

import pytest
from django import forms
from django.contrib.auth.forms import AuthenticationForm, PasswordChangeForm, SetPasswordForm
from django.http import HttpResponse
from django.template import Context, RequestContext, Template
from django.templatetags.static import static
from django.test import RequestFactory
from django.urls import NoReverseMatch, include, path, reverse, set_script_prefix
from django.utils.safestring import SafeString, mark_safe

from accounts import urls as accounts_urls
from accounts.forms import CodeForm, PhoneChangeForm, PhoneLoginForm
from accounts.models import User
from accounts.paths import cached_reverse
from accounts.templatetags.fast_render import field_html, widget_html

pytestmark = pytest.mark.django_db


def page(request):
    return HttpResponse()


# The URLconf of the tests that override ROOT_URLCONF: one app, two instances.
shop = ([path("item/", page, name="item")], "shop")
urlpatterns = [
    path("elsewhere/", page, name="home"),
    path("a/", include(shop, namespace="shop-a")),
    path("b/", include(shop, namespace="shop-b")),
]


# widget_html ------------------------------------------------------------------


class EveryCaseForm(forms.Form):
    plain = forms.CharField(required=False)
    helped = forms.CharField(help_text="Said <em>aloud</em>.")
    email = forms.EmailField(initial="a@example.com")
    count = forms.IntegerField(min_value=1)
    locked = forms.CharField(disabled=True, initial="fixed")
    own_id = forms.CharField(widget=forms.TextInput(attrs={"id": "mine", "spellcheck": False}))
    described = forms.CharField(
        help_text="Help.", widget=forms.TextInput(attrs={"aria-describedby": "elsewhere"})
    )
    secret = forms.CharField(widget=forms.PasswordInput)
    choice = forms.ChoiceField(choices=[("a", "A"), ("b", "B")])
    localized = forms.DecimalField(localize=True, initial=1.5)
    tracked = forms.CharField(show_hidden_initial=True, initial="x")
    # Attributes written by the site: markup marked safe stays as it is, the rest is escaped.
    titled = forms.CharField(
        widget=forms.TextInput(
            attrs={"placeholder": mark_safe("a &amp; b"), "title": "say \"hi\" & <bye> 'x'"}
        )
    )


def bound_and_checked(form):
    form.is_valid()
    return form


USER = User(username="person", phone_number_for_2fa="+14155550100")

FORMS = {
    "phone, empty": lambda: PhoneLoginForm(),
    "phone, typed": lambda: bound_and_checked(PhoneLoginForm({"number": "+1 415 555"})),
    "phone, hostile": lambda: bound_and_checked(PhoneLoginForm({"number": "\"><b>&'x"})),
    "phone, missing": lambda: bound_and_checked(PhoneLoginForm({"number": ""})),
    "phone change": lambda: bound_and_checked(PhoneChangeForm({"number": "1"}, user=USER)),
    "code, empty": lambda: CodeForm(),
    "code, wrong": lambda: bound_and_checked(CodeForm({"code": "12a"})),
    "password login": lambda: AuthenticationForm(),
    "password login, wrong": lambda: bound_and_checked(
        AuthenticationForm(data={"username": "nobody", "password": "wrong"})
    ),
    "set password": lambda: bound_and_checked(
        SetPasswordForm(USER, {"new_password1": "a", "new_password2": "b"})
    ),
    "change password": lambda: PasswordChangeForm(USER),
    "every case": lambda: EveryCaseForm(),
    "every case, bound": lambda: bound_and_checked(EveryCaseForm({"plain": "<x>", "count": "0"})),
    "no required attribute": lambda: EveryCaseForm(use_required_attribute=False),
    "no ids": lambda: EveryCaseForm(auto_id=False),
    "prefixed": lambda: EveryCaseForm(prefix="p", auto_id="field_%s"),
}


@pytest.mark.parametrize("name", FORMS)
def test_widget_html_is_what_django_renders(name):
    form = FORMS[name]()
    for field in form:
        html = widget_html(field)
        assert html == str(field), field.name
        assert isinstance(html, SafeString)


def test_widget_html_escapes_the_typed_value():
    form = bound_and_checked(PhoneLoginForm({"number": '"><script>'}))
    assert 'value="&quot;&gt;&lt;script&gt;"' in widget_html(form["number"])


def test_widget_html_marks_an_invalid_field_and_points_at_its_error():
    html = widget_html(bound_and_checked(PhoneLoginForm({"number": ""}))["number"])
    assert 'aria-invalid="true" aria-describedby="id_number_helptext id_number_error"' in html


# cached_url -------------------------------------------------------------------


def cached_url(name, request=None):
    template = Template("{% load fast_render %}{% cached_url '" + name + "' %}")
    return template.render(RequestContext(request) if request else Context())


def test_cached_url_is_the_reversed_url():
    assert cached_url("home") == "/"
    assert cached_url("accounts:verify_resend") == "/verify/resend/"


def test_cached_url_follows_the_script_prefix():
    assert cached_url("accounts:login") == "/login/"
    set_script_prefix("/site/")
    try:
        assert cached_url("accounts:login") == "/site/login/"
    finally:
        set_script_prefix("/")
    assert cached_url("accounts:login") == "/login/"


def test_cached_url_follows_the_urlconf(settings):
    assert cached_url("home") == "/"
    settings.ROOT_URLCONF = __name__
    assert cached_url("home") == "/elsewhere/"


def test_cached_url_follows_the_current_app(settings):
    settings.ROOT_URLCONF = __name__
    request = RequestFactory().get("/")
    request.current_app = "shop-a"
    assert cached_url("shop:item", request) == "/a/item/"
    request.current_app = "shop-b"
    assert cached_url("shop:item", request) == "/b/item/"


def test_cached_url_refuses_an_unknown_name():
    with pytest.raises(NoReverseMatch):
        cached_url("accounts:nowhere")


def test_cached_url_reads_the_script_prefix_once_per_request():
    request = RequestFactory().get("/")
    assert cached_url("accounts:login", request) == "/login/"
    set_script_prefix("/site/")
    try:
        # The same request: its pages keep the prefix it came in with.
        assert cached_url("accounts:login", request) == "/login/"
        assert cached_url("accounts:login", RequestFactory().get("/")) == "/site/login/"
    finally:
        set_script_prefix("/")


def test_cached_reverse_is_reverse_for_every_page_of_the_site():
    names = ["home"] + [
        f"accounts:{pattern.name}" for pattern in accounts_urls.urlpatterns if pattern.name
    ]
    assert len(names) > 10
    request = RequestFactory().get("/")
    for name in names:
        assert cached_reverse(name) == cached_reverse(name, request) == reverse(name)


# cached_static ------------------------------------------------------------------


def cached_static(path):
    return Template("{% load fast_render %}{% cached_static '" + path + "' %}").render(Context())


def test_cached_static_is_the_static_url():
    assert cached_static("css/site.css") == static("css/site.css")
    assert cached_static("js/resend-countdown.js") == static("js/resend-countdown.js")


def test_cached_static_follows_the_static_settings(settings):
    assert cached_static("css/site.css") == "/static/css/site.css"
    settings.STATIC_URL = "https://cdn.example.com/assets/"
    assert cached_static("css/site.css") == "https://cdn.example.com/assets/css/site.css"


def test_cached_static_follows_the_script_prefix():
    set_script_prefix("/site/")
    try:
        assert cached_static("css/site.css") == static("css/site.css")
    finally:
        set_script_prefix("/")
    assert cached_static("css/site.css") == static("css/site.css")


# field_html -------------------------------------------------------------------

# The template the pages included for each field before field_html drew it.
FIELD_TEMPLATE = """{% load fast_render %}
<div class="field{% if field.errors %} field-invalid{% endif %}">
  <label for="{{ field.id_for_label }}">{{ field.label }}</label>
  {% if field.help_text %}
    <div class="hint" id="{{ field.auto_id }}_helptext">{{ field.help_text|safe }}</div>
  {% endif %}
  {{ field|widget_html }}
  {% if field.errors %}
    <div id="{{ field.auto_id }}_error">
      {% for error in field.errors %}<p class="error">{{ error }}</p>{% endfor %}
    </div>
  {% endif %}
</div>"""


def between_tags(html):
    return re.sub(r">\s+<", "><", html.strip())


@pytest.mark.parametrize("name", FORMS)
def test_field_html_is_what_the_field_template_rendered(name):
    form = FORMS[name]()
    for field in form:
        html = field_html(field)
        expected = Template(FIELD_TEMPLATE).render(Context({"field": field}))
        assert between_tags(html) == between_tags(expected), field.name
        assert isinstance(html, SafeString)


def test_field_html_escapes_the_label_and_the_errors():
    class Hostile(forms.Form):
        name = forms.CharField(label="<b>Name</b>")

        def clean_name(self):
            raise forms.ValidationError("<script>x</script>")

    html = field_html(bound_and_checked(Hostile({"name": "a"}))["name"])
    assert "&lt;b&gt;Name&lt;/b&gt;" in html
    assert '<p class="error">&lt;script&gt;x&lt;/script&gt;</p>' in html
