"""An import-linter contract type: no import cycle between the modules of one package.

Registered in pyproject.toml ([tool.importlinter] contract_types) as `acyclic_modules`:

    [[tool.importlinter.contracts]]
    name = "No import cycle inside an app"
    type = "acyclic_modules"
    packages = ["crm", "customers", "leads"]
    ignore_modules = ["crm.migrations.**"]
    allow = []  # "importer -> imported" edges known to close a cycle, to be removed

For each package it takes the graph of the imports between its own modules (imports inside
functions included, as grimp finds them) and fails for every group of modules that import
each other, directly or through others (a strongly connected component of more than one
module). A package's `__init__` counts as a module like any other. The built-in
`acyclic_siblings` contract compares sibling sub-packages only: it passes a package whose
`__init__` imports a submodule that imports the package back, which this one reports.

`ignore_modules` leaves modules out (Django migrations: a migration is never imported by
the code). `allow` removes single imports from the graph, for a cycle accepted for now;
the goal is an empty list.
"""

from __future__ import annotations

from collections.abc import Iterable

import grimp
from importlinter.application import output
from importlinter.domain import fields
from importlinter.domain.contract import Contract, ContractCheck
from importlinter.domain.helpers import module_expressions_to_modules


def strongly_connected(nodes: Iterable[str], edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one node (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for root in sorted(nodes):
        if root in index:
            continue
        work = [(root, iter(sorted(edges.get(root, ()))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, successors = work[-1]
            advanced = False
            for successor in successors:
                if successor not in index:
                    index[successor] = low[successor] = counter
                    counter += 1
                    stack.append(successor)
                    on_stack.add(successor)
                    work.append((successor, iter(sorted(edges.get(successor, ())))))
                    advanced = True
                    break
                if successor in on_stack:
                    low[node] = min(low[node], index[successor])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return sorted(found)


class AcyclicModulesContract(Contract):
    type_name = "acyclic_modules"

    packages = fields.ListField(subfield=fields.StringField())
    ignore_modules = fields.ListField(subfield=fields.ModuleExpressionField(), required=False)
    allow = fields.ListField(subfield=fields.ImportExpressionField(), required=False)

    def check(self, graph: grimp.ImportGraph, verbose: bool) -> ContractCheck:
        ignored = {
            module.name
            for module in module_expressions_to_modules(graph, self.ignore_modules or [])
        }
        allowed = set()
        for expression in self.allow or []:
            allowed.add((expression.importer.expression, expression.imported.expression))
        unmatched = sorted(
            f"{importer} -> {imported}"
            for importer, imported in allowed
            if not graph.direct_import_exists(importer=importer, imported=imported)
        )
        cycles = []
        for package in self.packages:
            modules = {
                m
                for m in graph.modules
                if (m == package or m.startswith(package + ".")) and m not in ignored
            }
            edges = {
                m: {
                    imported
                    for imported in graph.find_modules_directly_imported_by(m)
                    if imported in modules and (m, imported) not in allowed
                }
                for m in modules
            }
            for component in strongly_connected(modules, edges):
                members = set(component)
                imports = []
                for importer in component:
                    for imported in sorted(edges[importer] & members):
                        lines = [
                            d["line_number"]
                            for d in graph.get_import_details(importer=importer, imported=imported)
                        ]
                        imports.append((importer, imported, sorted(lines)))
                cycles.append({"package": package, "modules": component, "imports": imports})
        return ContractCheck(
            kept=not cycles and not unmatched,
            metadata={"cycles": cycles, "unmatched": unmatched},
        )

    def render_broken_contract(self, check: ContractCheck) -> None:
        for cycle in check.metadata["cycles"]:
            output.print_error(
                f"{cycle['package']}: {len(cycle['modules'])} modules import each other:",
                bold=True,
            )
            output.new_line()
            for importer, imported, lines in cycle["imports"]:
                where = ", ".join(f"l.{n}" for n in lines)
                output.indent_cursor()
                output.print_error(f"{importer} -> {imported} ({where})")
            output.new_line()
        for edge in check.metadata["unmatched"]:
            output.print_error(f"Allowed import {edge} is not in the code any more: remove it.")
            output.new_line()
