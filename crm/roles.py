"""Who may do what: the tenant's roles grouped into named capabilities, in one place.

Every role check in the project reads one of these sets (`membership.role in LEAD_ALL`),
never a tuple of roles written out where it is used. A set names a capability, not a
page: a new page that assigns leads checks `ASSIGNERS`, whatever else it shows.

Owner rules ("a rep reads the leads they own") are not here: they belong to each app's
`access.py`, which combines a capability with the row's owner and answers 404 for a missing
and a foreign id alike.
"""

from __future__ import annotations

from crm.models import Role

# Everyone with a seat in the tenant.
EVERYONE = frozenset(Role.values)
# Administer the tenant: the admin site and every tenant model's page in it (a page that
# sales managers tune too opens to ASSIGNERS or MANAGERS instead).
ADMINS = frozenset({Role.ADMIN})

# -- leads ---------------------------------------------------------------------------------
# Read every lead of the tenant (reps read the leads they own: leads.access).
LEAD_ALL = frozenset({Role.MANAGER, Role.MARKETING, Role.ADMIN})
# Open the lead list at all: the readers of every lead and the reps for their own.
LEAD_LIST = LEAD_ALL | {Role.REP}
# Import legacy lists of leads.
IMPORTERS = frozenset({Role.MANAGER, Role.MARKETING, Role.ADMIN})
# Reassign a lead, return it to the pool, publish an assignment policy, lift a zone.
ASSIGNERS = frozenset({Role.MANAGER, Role.ADMIN})
# Receive a lead from the assignment engine and own it.
OWNERS = frozenset({Role.REP})
# The people a rep's owner filter lists (whoever can own leads or customers).
OWNER_CHOICES = frozenset({Role.REP, Role.MANAGER})

# -- customers -----------------------------------------------------------------------------
# Read every customer of the tenant (service agents for the sales context of the people
# they help; reps read their own: customers.access).
CUSTOMER_ALL = frozenset({Role.MANAGER, Role.MARKETING, Role.SERVICE, Role.ADMIN})
# Open the customer list at all.
CUSTOMER_LIST = CUSTOMER_ALL | {Role.REP}
# Log a follow-up on any customer (its owner may always).
CUSTOMER_WRITERS = frozenset({Role.MANAGER, Role.ADMIN})

# -- the sales team's work ------------------------------------------------------------------
# The people a lead or a customer page shows sales context to.
SALES = frozenset({Role.REP, Role.MANAGER, Role.MARKETING, Role.ADMIN})
# The daily board: a rep's own, and the managers' view of every rep's closed day.
BOARD = frozenset({Role.REP, Role.MANAGER, Role.ADMIN})
# Lead others' work: see every rep's board and day, get escalations, tune the board.
MANAGERS = frozenset({Role.MANAGER, Role.ADMIN})
# Head the sales team day to day: their menu offers the assignment rules (admins reach
# them under Administration).
SALES_MANAGERS = frozenset({Role.MANAGER})

# -- reports -------------------------------------------------------------------------------
# The lead-quality report and its export.
REPORT_READERS = frozenset({Role.MARKETING, Role.MANAGER, Role.ADMIN})
# The water levels (crm.levels): reps read their own and the team's, the report readers
# every rep's too.
LEVEL_READERS = REPORT_READERS | {Role.REP}
# The manager dashboard (/dashboard/), the home of these roles.
DASHBOARD = frozenset({Role.MANAGER, Role.ADMIN})
# The sales process report and the weekly diagnoses: reps read their own line and
# diagnoses (and the team's total), managers and admins everyone's.
PROCESS_READERS = frozenset({Role.REP, Role.MANAGER, Role.ADMIN})

# -- opportunities -------------------------------------------------------------------------
# Read every opportunity of the tenant (reps read the ones they own: opportunities.access;
# service agents read them for context, without amounts or contracts).
OPPORTUNITY_ALL = frozenset({Role.MANAGER, Role.MARKETING, Role.SERVICE, Role.ADMIN})
# Open the pipeline at all.
OPPORTUNITY_LIST = OPPORTUNITY_ALL | {Role.REP}
# Create opportunities: reps (their own) and whoever leads them.
OPPORTUNITY_CREATORS = frozenset({Role.REP, Role.MANAGER, Role.ADMIN})
# Work on any opportunity (its owner always may): advance it, edit it, close it.
OPPORTUNITY_WRITERS = frozenset({Role.MANAGER, Role.ADMIN})
# Approve an opportunity's validity (never its own owner's).
VALIDITY_APPROVERS = frozenset({Role.MANAGER, Role.ADMIN})
# Never see an opportunity's amounts nor download its signed contracts.
AMOUNT_HIDDEN = frozenset({Role.SERVICE})
