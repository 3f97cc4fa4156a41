"""Every user-visible string has its Simplified Chinese text, and the compiled catalogue
is the one the .po describes (a stale .mo would silently show English)."""

import gettext
from pathlib import Path

import polib
import pytest
from django.conf import settings
from django.urls import reverse

LOCALE = Path(settings.BASE_DIR) / "locale" / "zh_Hans" / "LC_MESSAGES"


def test_every_message_is_translated():
    po = polib.pofile(str(LOCALE / "django.po"))
    untranslated = [e.msgid for e in po.untranslated_entries()]
    fuzzy = [e.msgid for e in po.fuzzy_entries()]
    assert not untranslated, f"untranslated: {untranslated}"
    assert not fuzzy, f"fuzzy: {fuzzy}"


def test_the_compiled_catalogue_matches_the_po():
    po = polib.pofile(str(LOCALE / "django.po"))
    with open(LOCALE / "django.mo", "rb") as fh:
        mo = gettext.GNUTranslations(fh)
    stale = [
        e.msgid
        for e in po.translated_entries()
        if not e.msgid_plural
        and (mo.pgettext(e.msgctxt, e.msgid) if e.msgctxt else mo.gettext(e.msgid)) != e.msgstr
    ]
    assert not stale, f"django.mo is older than django.po: run `make messages` ({stale[:5]})"


def test_the_javascript_catalogue_is_complete_and_compiled():
    """djangojs.po holds the admin widgets' strings Django's Chinese catalogue lacks."""
    po = polib.pofile(str(LOCALE / "djangojs.po"))
    assert len(po) and not po.untranslated_entries() and not po.fuzzy_entries()
    with open(LOCALE / "djangojs.mo", "rb") as fh:
        mo = gettext.GNUTranslations(fh)
    assert all(mo.gettext(e.msgid) == e.msgstr for e in po)


@pytest.mark.django_db
def test_djangos_own_messages_are_in_chinese_too(world, login):
    """A too-short new password is refused in Chinese (Django's catalogue lacks it)."""
    response = login(world.a.rep).post(
        reverse("password_change"),
        {
            "old_password": settings.DEMO_PASSWORD,
            "new_password1": "q7#x",
            "new_password2": "q7#x",
        },
    )
    assert response.status_code == 200
    assert "密码太短" in response.text
    assert "too short" not in response.text
