"""Cheaper equivalents of `{% url %}`, `{% static %}` and `{{ field }}` for the login pages.

Rendering is a large part of a login's CPU cost (bench/README.md). Measured
per render, in process: each `{% url %}` costs about 50 µs, most of it in
reverse(), and `cached_url` about 20 µs for a page's first URL and 7 µs for
the next; `{% static %}` about 25 µs with hashed names, `cached_static` 5 µs;
a text `<input>` drawn through Django's widget templates (text.html, then
input.html, then attrs.html, through the form renderer) costs about 270 µs,
and `widget_html` about 60 µs; a field's label, hint and errors drawn by an
included template cost about 300 µs more, and `field_html` about 40 µs.
The login page has 5 URLs and a field, the code page 6 and a field.
"""

from __future__ import annotations

import functools
from html import escape as html_escape

from django import template
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.templatetags.static import static
from django.urls import get_script_prefix
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from ..paths import cached_reverse

register = template.Library()

# Django's widget templates that are nothing but input.html: widget_html()
# draws these itself, giving the HTML those templates give under the default
# FORM_RENDERER, and leaves every other widget to Django.
INPUT_TEMPLATES = frozenset(
    f"django/forms/widgets/{name}.html"
    for name in ("input", "text", "password", "email", "number", "url", "tel", "search")
)


@register.simple_tag(takes_context=True)
def cached_url(context, view_name):
    """Return `{% url view_name %}`, computed once per URLconf and script prefix.

    For URL names without arguments: their path is the same on every request
    that shares the resolver, the script prefix and the current application.
    """
    # The current application, found as the {% url %} tag finds it.
    request = getattr(context, "request", None)
    try:
        current_app = request.current_app
    except AttributeError:
        try:
            current_app = request.resolver_match.namespace
        except AttributeError:
            current_app = None
    return cached_reverse(view_name, request, current_app)


@register.simple_tag
def cached_static(path):
    """Return `{% static path %}`, computed once per path and script prefix.

    The hashed name of a file changes only when the site is deployed again,
    which starts new processes. A relative STATIC_URL follows the script prefix.
    """
    return _static(path, get_script_prefix())


@functools.lru_cache(maxsize=256)
def _static(path, script_prefix):
    return static(path)


@receiver(setting_changed)
def _forget_static_urls(*, setting, **kwargs):
    # Tests that change where static files live must not get the old URLs.
    if setting in {"STORAGES", "STATIC_URL", "STATIC_ROOT"}:
        _static.cache_clear()


@register.filter
def widget_html(field):
    """Return the HTML of `{{ field }}`, drawing a plain `<input>` without templates.

    The attributes are those BoundField.as_widget() gives the widget: its
    own, then required, disabled, aria-invalid, aria-describedby and the id,
    in the order input.html and attrs.html write them.
    """
    widget = field.field.widget
    if (
        widget.template_name not in INPUT_TEMPLATES
        or field.field.localize
        or field.field.show_hidden_initial
    ):
        return str(field)
    attrs = field.build_widget_attrs({}, widget)
    if field.auto_id and "id" not in widget.attrs:
        attrs.setdefault("id", field.auto_id)
    context = widget.get_context(field.html_name, field.value(), attrs)["widget"]
    html = [f'<input type="{_escape(context["type"])}"']
    html.append(f' name="{_escape(context["name"])}"')
    if context["value"] is not None:
        html.append(f' value="{_escape(context["value"])}"')
    for name, value in context["attrs"].items():
        if value is True:
            html.append(f" {_escape(name)}")
        elif value is not False:
            html.append(f' {_escape(name)}="{_escape(value)}"')
    html.append(">")
    return mark_safe("".join(html))  # noqa: S308 every part above is escaped


def _escape(value) -> str:
    """Return conditional_escape(value), without its wrapper for lazy strings.

    That wrapper checks every argument for a lazy string first; an input's
    dozen attributes are plain strings, and went through it one by one.
    """
    if hasattr(value, "__html__"):
        return value.__html__()
    return html_escape(str(value))


@register.filter
def field_html(field):
    """Return a form field as every page shows it: label, hint, input, errors.

    The ids are those the input's aria-describedby points at (widget_html).
    """
    errors = field.errors
    html = [
        format_html('<div class="field{}">', " field-invalid" if errors else ""),
        format_html('<label for="{}">{}</label>', field.id_for_label, field.label),
    ]
    if field.help_text:
        # Written by the site, not typed by anyone: markup in it is meant.
        help_text = mark_safe(field.help_text)  # noqa: S308
        html.append(
            format_html('<div class="hint" id="{}_helptext">{}</div>', field.auto_id, help_text)
        )
    html.append(widget_html(field))
    if errors:
        items = format_html_join("", '<p class="error">{}</p>', ((error,) for error in errors))
        html.append(format_html('<div id="{}_error">{}</div>', field.auto_id, items))
    html.append("</div>")
    return mark_safe("\n".join(html))  # noqa: S308 every part above is escaped
