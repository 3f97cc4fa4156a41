"""Django's own messages that its Simplified Chinese catalogue lacks (Django 5.2): listed
here so that `make messages` keeps them in ours (locale/, which takes precedence), and a
short password, the admin's headings and its log-in page never fall back to English.

The admin's JavaScript strings (the tag picker of filter_horizontal …) are in
locale/zh_Hans/LC_MESSAGES/djangojs.po, kept by hand: `make messages` extracts the
`django` domain only, and compiles both. Nothing imports this module.
"""

from django.utils.translation import gettext_noop, ngettext_lazy

MESSAGES = (
    # django.contrib.auth.password_validation.MinimumLengthValidator
    ngettext_lazy(
        "This password is too short. It must contain at least %d character.",
        "This password is too short. It must contain at least %d characters.",
        "min_length",
    ),
    # django.forms.models (a choice that no longer exists)
    gettext_noop("%(model)s instance with %(field)s %(value)r is not a valid choice."),
    # django.contrib.admin templates
    gettext_noop("Model name"),
    gettext_noop("Add link"),
    gettext_noop("Change or view list link"),
    gettext_noop("Error:"),
    gettext_noop("Forgotten your login credentials?"),
    gettext_noop("In case you’ve forgotten, you are:"),
    gettext_noop("After you’ve created a user, you’ll be able to edit more user options."),
)
