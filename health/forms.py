"""The health settings form of the admin: the six weights (summing to 100), each
dimension's bands as readable lines ("7: 100" … "else: 0"), the risk rule and the
competitor keywords. A dimension's bad bands are an error on its own field."""

from __future__ import annotations

import re

from django import forms
from django.utils.translation import gettext_lazy as _

from health.models import (
    DEFAULT_BANDS,
    LOWER_IS_BETTER,
    UNITS,
    Dimension,
    HealthSettings,
    band_problems,
)

ELSE_WORDS = ("else", "其他", "其余", "否则")
_SEPARATORS = re.compile(r"\s*(?:[:：,，=→]|->|\s)\s*")


def band_field_name(dimension: str) -> str:
    return f"bands_{dimension}"


def bands_text(spec: dict) -> str:
    """A dimension's bands as the lines the form shows."""
    lines = [f"{_number_text(t)}: {int(s)}" for t, s in spec.get("bands", [])]
    lines.append(f"else: {spec.get('else', 0)}")
    return "\n".join(lines)


def _number_text(value) -> str:
    return str(int(value)) if float(value) == int(value) else str(value)


def _number(text: str):
    value = float(text)
    return int(value) if value == int(value) else value


def parse_bands(dimension: str, text: str) -> tuple[dict | None, list[str]]:
    """(the bands of `text`, the problems): one "threshold: score" per line and an
    "else: score" line; the problems of health.models.band_problems after that."""
    bands, other, problems = [], None, []
    for number, raw in enumerate((text or "").splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        parts = [p for p in _SEPARATORS.split(line) if p]
        try:
            if parts and parts[0].lower() in ELSE_WORDS:
                if len(parts) != 2:
                    raise ValueError
                other = _number(parts[1])
                continue
            if len(parts) != 2:
                raise ValueError
            bands.append([_number(parts[0]), _number(parts[1])])
        except (ValueError, OverflowError):
            problems.append(
                str(_("line %(n)d: write “threshold: score” or “else: score”")) % {"n": number}
            )
    if problems:
        return None, problems
    if other is None:
        return None, [str(_("add an “else: score” line"))]
    spec = {"bands": bands, "else": other}
    problems = band_problems(dimension, spec)
    return (None, problems) if problems else (spec, [])


def _band_help(dimension: str) -> str:
    unit = UNITS[Dimension(dimension)]
    if dimension in LOWER_IS_BETTER:
        rule = _(
            "Less is better: the first line whose threshold the value does not pass "
            "(value ≤ threshold) gives the score; thresholds rise."
        )
    else:
        rule = _(
            "More is better: the first line whose threshold the value reaches "
            "(value ≥ threshold) gives the score; thresholds fall."
        )
    tail = _("One “threshold: score” per line (in %(unit)s), then “else: score”.") % {"unit": unit}
    return f"{rule} {tail}"


def _normal(text) -> str:
    return "\n".join(line.strip() for line in str(text or "").splitlines() if line.strip())


class BandsField(forms.CharField):
    """One dimension's bands as lines of text (parsed and checked by the form)."""

    def __init__(self, dimension: str, **kwargs):
        kwargs.setdefault("label", Dimension(dimension).label)
        kwargs.setdefault("help_text", _band_help(dimension))
        kwargs.setdefault(
            "widget", forms.Textarea(attrs={"rows": 7, "cols": 18, "class": "health-bands"})
        )
        super().__init__(**kwargs)
        self.dimension = dimension

    def has_changed(self, initial, data) -> bool:
        return _normal(initial) != _normal(data)


class HealthSettingsForm(forms.ModelForm):
    """Weights, bands per dimension, the risk rule and the keywords. The bands reach the
    instance in clean(), so the model's own checks (HealthSettings.clean) still run."""

    class Meta:
        model = HealthSettings
        fields = [
            "weight_recency",
            "weight_frequency",
            "weight_service",
            "weight_downloads",
            "weight_quotes",
            "weight_competitor",
            "risk_score_below",
            "risk_quiet_days",
            "competitor_keywords",
        ]
        widgets = {
            **{
                f"weight_{d}": forms.NumberInput(attrs={"class": "crm-w-5em"})
                for d in Dimension.values
            },
            "competitor_keywords": forms.Textarea(attrs={"rows": 5, "cols": 30}),
        }

    bands_recency = BandsField(Dimension.RECENCY)
    bands_frequency = BandsField(Dimension.FREQUENCY)
    bands_service = BandsField(Dimension.SERVICE)
    bands_downloads = BandsField(Dimension.DOWNLOADS)
    bands_quotes = BandsField(Dimension.QUOTES)
    bands_competitor = BandsField(Dimension.COMPETITOR)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        table = self.instance.band_table()
        for d in Dimension.values:
            self.initial.setdefault(band_field_name(d), bands_text(table[d]))
        self.bands: dict[str, dict] = {}

    def _clean_dimension(self, dimension: str):
        name = band_field_name(dimension)
        spec, problems = parse_bands(dimension, self.cleaned_data.get(name, ""))
        if problems:
            self.add_error(name, problems)
        else:
            self.bands[dimension] = spec
        return self.cleaned_data.get(name)

    def clean(self):
        cleaned = super().clean()
        for d in Dimension.values:
            if band_field_name(d) in cleaned:
                self._clean_dimension(d)
        if len(self.bands) == len(Dimension.values):
            # Only what differs from the defaults is the tenant's own.
            self.instance.bands = {
                d: spec for d, spec in self.bands.items() if spec != DEFAULT_BANDS[d]
            }
        return cleaned
