"""The import rules `make lint` enforces (pyproject.toml, [tool.importlinter]): the
`acyclic_modules` contract type (scripts/importlinter_acyclic.py) on small graphs, and the
kernel's own part of the rules on the project."""

from __future__ import annotations

import grimp
import pytest

from scripts.importlinter_acyclic import AcyclicModulesContract, strongly_connected

APPS = ("customers", "leads", "opportunities", "service_feedback", "health")


def contract(**options) -> AcyclicModulesContract:
    return AcyclicModulesContract(
        name="test", session_options={"root_packages": ["pk"]}, contract_options=options
    )


def graph_of(*imports: tuple[str, str]) -> grimp.ImportGraph:
    graph = grimp.ImportGraph()
    for importer, imported in imports:
        graph.add_module(importer)
        graph.add_module(imported)
        graph.add_import(importer=importer, imported=imported, line_number=1, line_contents="")
    return graph


def test_strongly_connected_finds_each_cycle_once():
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"f"}, "f": {"e"}}
    assert strongly_connected(edges, edges) == [["a", "b", "c"], ["e", "f"]]
    assert strongly_connected(["x", "y"], {"x": {"y"}}) == []


def test_a_package_importing_its_own_submodule_back_is_a_cycle():
    """What the built-in acyclic_siblings does not see: pk/__init__ ↔ pk.a."""
    graph = graph_of(("pk", "pk.a"), ("pk.a", "pk"), ("pk.b", "pk.a"))
    check = contract(packages=["pk"]).check(graph, verbose=False)
    assert not check.kept
    [cycle] = check.metadata["cycles"]
    assert cycle["modules"] == ["pk", "pk.a"]
    assert [(i, j) for i, j, _lines in cycle["imports"]] == [("pk", "pk.a"), ("pk.a", "pk")]


def test_one_way_imports_migrations_and_allowed_imports_pass():
    graph = graph_of(
        ("pk.views", "pk.models"),
        ("pk.models", "pk.rules"),
        ("pk.migrations.0001_initial", "pk.models"),
        ("pk.models", "pk.migrations.0001_initial"),
        ("pk.tasks", "pk.services"),
        ("pk.services", "pk.tasks"),
    )
    options = {"packages": ["pk"], "ignore_modules": ["*.migrations", "*.migrations.*"]}
    assert not contract(**options).check(graph, verbose=False).kept
    allowed = contract(**options, allow=["pk.services -> pk.tasks"])
    assert allowed.check(graph, verbose=False).kept


def test_an_allowed_import_that_is_gone_breaks_the_contract():
    graph = graph_of(("pk.views", "pk.models"))
    check = contract(packages=["pk"], allow=["pk.models -> pk.views"]).check(graph, verbose=False)
    assert not check.kept
    assert check.metadata["unmatched"] == ["pk.models -> pk.views"]


# -- the kernel on the project ----------------------------------------------------------------


@pytest.fixture(scope="module")
def project():
    return grimp.build_graph("crm", *APPS, cache_dir=None)


def test_the_kernel_imports_no_app(project):
    for app in APPS:
        chain = project.find_shortest_chain(importer="crm", imported=app, as_packages=True)
        assert chain is None, f"crm reaches {app}: {' -> '.join(chain)}"


def test_the_kernel_has_no_import_cycle(project):
    check = contract(packages=["crm"], ignore_modules=["*.migrations", "*.migrations.*"]).check(
        project, verbose=False
    )
    assert check.kept, check.metadata["cycles"]
