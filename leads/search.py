"""The lead list's search box: a term found in the company, the contact name or the phone.

The exact condition is the one users expect ("contains", case-insensitive for Latin
letters; a phone from three digits on, also as typed with spaces or dashes, or as the
number it parses to). Under row-level security no index serves `LIKE`, so the candidates
come first from the gram table (`leads.models.search.SearchGram`) by btree equality,
which the planner does use under the policy, and the exact condition is checked on those
candidates only:

- one character: the grams that start with it (a range on the byte-ordered column);
- two characters or more: the leads that have up to `crm.search.MAX_GRAMS` of the term's
  two-character grams (first, last and spread between), joined on the primary key, so
  the planner starts from the rarest;
- a phone (digits with the spaces, dashes and "+" people type), from three digits on:
  the same with the phone's three-digit grams.

The candidates' ids are read first, in one query bounded by the list's search cap
(`candidate_ids`); the list then filters on that short list of ids and checks the exact
condition. A term with more candidates than the cap is better served by reading the list
in its own order and checking each row (`walk_q()`): common enough to fill a page soon.
docs/decisions.md, "Lead search through a gram table".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property

from django.db.models import Q

from crm import normalize
from crm.search import bounded_ids, gram_join, text_candidates

PHONE_GRAM = 3  # digits per phone gram; keep in step with leads_search_grams()
TABLE = "leads_searchgram"
KEY = "lead_id"
PHONE_LIKE = re.compile(r"[\d\s+\-().]+")


def phone_grams(digits: str) -> list[str]:
    grams = ["#" + digits[i : i + PHONE_GRAM] for i in range(len(digits) - PHONE_GRAM + 1)]
    return list(dict.fromkeys(grams))


@dataclass(frozen=True)
class Term:
    value: str  # as typed, stripped

    @cached_property
    def lowered(self) -> str:
        return self.value.lower()

    @cached_property
    def digits(self) -> str:
        """The term's digits, when it reads as (part of) a phone number: digits with the
        spaces, dashes, dots, brackets and "+" people type in them; else none."""
        if not PHONE_LIKE.fullmatch(self.value):
            return ""
        return "".join(c for c in self.value if c.isdigit())

    @cached_property
    def e164(self) -> str | None:
        if len(self.digits) < PHONE_GRAM:
            return None
        phone = normalize.parse_phone(self.value)
        return phone.e164 if phone is not None else None

    @cached_property
    def phone_digits(self) -> list[str]:
        """The digit strings a phone is looked up by: as typed, and as the number parses."""
        found = [self.digits] if len(self.digits) >= PHONE_GRAM else []
        if self.e164:
            parsed = "".join(c for c in self.e164 if c.isdigit())
            if parsed not in found:
                found.append(parsed)
        return found

    def walk_q(self) -> Q:
        """The exact condition, checked row by row."""
        # icontains compares UPPER(column) for every row; Chinese and digits have no case.
        lookup = "icontains" if self.value.upper() != self.value.lower() else "contains"
        match = Q(**{f"company__{lookup}": self.value}) | Q(
            **{f"contact_name__{lookup}": self.value}
        )
        if len(self.digits) >= PHONE_GRAM:
            match |= Q(phone__contains=self.value) | Q(phone__contains=self.digits)
        if self.e164:
            match |= Q(phone=self.e164)
        return match

    def candidates(self, tenant_id: int) -> tuple[str, list]:
        """SQL for the ids of the leads that may match (a superset of the exact matches)."""
        parts = [text_candidates(TABLE, KEY, tenant_id, self.lowered)]
        for digits in self.phone_digits:
            parts.append(gram_join(TABLE, KEY, tenant_id, phone_grams(digits)))
        return " UNION ALL ".join(sql for sql, _ in parts), [p for _, ps in parts for p in ps]

    def candidate_ids(self, tenant_id: int, cap: int) -> list[int] | None:
        """The ids of the leads that may match (crm.search.bounded_ids), or None past `cap`."""
        sql, params = self.candidates(tenant_id)
        return bounded_ids(sql, params, KEY, cap)
