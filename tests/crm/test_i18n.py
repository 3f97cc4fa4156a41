"""Every user-visible string has its Simplified Chinese text, and the compiled catalogue
is the one the .po describes (a stale .mo would silently show English)."""

import gettext
from pathlib import Path

import polib
from django.conf import settings

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
