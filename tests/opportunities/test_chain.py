"""The decision chain read as a whole (opportunities.chain) on hand-made chains: coverage
counts roles, not people; "reach next" names the highest-influence role not yet contacted
or still opposed; the graph has one node per member around the customer."""

from __future__ import annotations

from customers.models import Contact, DecisionRole
from opportunities import chain
from opportunities.models import Attitude, ChainRole, ContactStatus, Influence, OpportunityContact

CIO = ChainRole(pk=1, name="CIO", decision_role=DecisionRole.DECISION_MAKER, position=10)
BOSS = ChainRole(pk=2, name="总经理", decision_role=DecisionRole.DECISION_MAKER, position=20)
BUYER = ChainRole(pk=3, name="采购总监", decision_role=DecisionRole.PURCHASING, position=30)
USER = ChainRole(pk=4, name="使用部门负责人", decision_role=DecisionRole.USER, position=40)
MONEY = ChainRole(pk=5, name="财务", decision_role=DecisionRole.FINANCE, position=50)


def member(role, name, *, influence=Influence.MEDIUM, attitude=Attitude.UNKNOWN, status="not_yet"):
    return OpportunityContact(
        role=role,
        contact=Contact(name=name),
        influence=influence,
        attitude=attitude,
        contact_status=status,
    )


def test_an_empty_chain_has_no_coverage_and_nobody_to_reach():
    assert chain.coverage([]) == chain.Coverage(contacted=0, mapped=0)
    assert chain.coverage([]).percent is None
    assert chain.reach_next([]) is None


def test_coverage_counts_roles_contacted_over_roles_mapped_not_people():
    members = [
        # Two people in one role, one of them reached: the role counts once, contacted.
        member(CIO, "王总", status=ContactStatus.REACHED),
        member(CIO, "李工"),
        member(BUYER, "赵总监", status=ContactStatus.ENGAGED),
        member(USER, "钱主任"),
    ]
    found = chain.coverage(members)
    assert (found.contacted, found.mapped) == (2, 3)
    assert found.percent == 67
    # Five more uncontacted people in a contacted role change nothing.
    more = members + [member(BUYER, f"采购{i}") for i in range(5)]
    assert chain.coverage(more) == found


def test_every_role_contacted_is_full_coverage():
    members = [
        member(CIO, "王总", status=ContactStatus.ENGAGED),
        member(MONEY, "孙会计", status=ContactStatus.REACHED),
    ]
    assert chain.coverage(members).percent == 100


def test_reach_next_is_the_highest_influence_role_not_yet_contacted():
    members = [
        member(USER, "钱主任", influence=Influence.MEDIUM),
        member(MONEY, "孙会计", influence=Influence.HIGH),
        member(CIO, "王总", influence=Influence.HIGH, status=ContactStatus.REACHED),
        member(BUYER, "赵总监", influence=Influence.LOW),
    ]
    step = chain.reach_next(members)
    assert step.role == MONEY
    assert step.reason == chain.Reason.NOT_CONTACTED
    assert step.member.contact.name == "孙会计"
    assert step.influence == Influence.HIGH


def test_a_contacted_role_that_still_opposes_is_to_be_reached_again(english):
    members = [
        member(
            CIO,
            "王总",
            influence=Influence.HIGH,
            attitude=Attitude.OPPOSE,
            status=ContactStatus.ENGAGED,
        ),
        member(USER, "钱主任", influence=Influence.MEDIUM),
    ]
    step = chain.reach_next(members)
    assert step.role == CIO
    assert step.reason == chain.Reason.OPPOSED
    assert str(step.reason_label) == "still opposed"


def test_at_equal_influence_an_opposed_role_comes_first_then_the_list_order():
    uncontacted = member(CIO, "王总", influence=Influence.HIGH)
    opposed = member(
        BUYER, "赵总监", influence=Influence.HIGH, attitude=Attitude.OPPOSE, status="reached"
    )
    assert chain.reach_next([uncontacted, opposed]).role == BUYER
    # Two uncontacted roles of equal influence: the tenant's order of roles decides.
    first = member(BOSS, "周总", influence=Influence.MEDIUM)
    second = member(CIO, "吴总", influence=Influence.MEDIUM)
    assert chain.reach_next([first, second]).role == CIO


def test_a_roles_influence_is_its_strongest_candidate_members():
    members = [
        # The CIO role: a weak uncontacted member and a strong one.
        member(CIO, "李工", influence=Influence.LOW),
        member(CIO, "王总", influence=Influence.HIGH),
        member(BUYER, "赵总监", influence=Influence.MEDIUM),
    ]
    step = chain.reach_next(members)
    assert step.role == CIO and step.member.contact.name == "王总"
    # An opposed role's influence is its opposing members': a weak opponent next to a
    # strong supporter makes the role a low-influence one.
    members = [
        member(CIO, "李工", influence=Influence.LOW, attitude=Attitude.OPPOSE, status="reached"),
        member(CIO, "王总", influence=Influence.HIGH, attitude=Attitude.SUPPORT, status="engaged"),
        member(BUYER, "赵总监", influence=Influence.MEDIUM),
    ]
    assert chain.reach_next(members).role == BUYER


def test_nobody_to_reach_when_every_role_is_contacted_and_none_opposes():
    members = [
        member(CIO, "王总", attitude=Attitude.SUPPORT, status=ContactStatus.ENGAGED),
        member(BUYER, "赵总监", attitude=Attitude.NEUTRAL, status=ContactStatus.REACHED),
    ]
    assert chain.reach_next(members) is None


def test_the_graph_puts_the_customer_in_the_middle_and_each_member_around_it(english):
    members = [
        member(CIO, "王总", influence=Influence.HIGH, attitude=Attitude.SUPPORT),
        member(BUYER, "赵总监", influence=Influence.LOW, attitude=Attitude.OPPOSE),
    ]
    data = chain.graph(members, centre="恒力液压")
    centre, cio, buyer = data["nodes"]
    assert (centre["name"], centre["x"], centre["y"]) == ("恒力液压", 0, 0)
    assert [n["name"] for n in (cio, buyer)] == ["王总", "赵总监"]
    assert cio["symbolSize"] > buyer["symbolSize"]
    categories = [c["name"] for c in data["categories"]]
    assert categories[cio["category"]] == "Supports"
    assert categories[buyer["category"]] == "Opposes"
    assert data["legend"] == ["Supports", "Watching", "Opposes", "Unknown"]
    assert data["links"] == [
        {"source": "centre", "target": cio["id"], "value": "CIO"},
        {"source": "centre", "target": buyer["id"], "value": "采购总监"},
    ]
    # On a circle around the customer: the first at the top, the second opposite.
    assert (cio["x"], cio["y"]) == (0, -100)
    assert buyer["y"] == 100
