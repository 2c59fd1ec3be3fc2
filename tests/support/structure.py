"""`python -m tests.support.structure`: the shape the code keeps (run by `make check`).

- No module in services/, shared/ or qunma/ is longer than 400 lines (pure schema modules,
  which only declare request and response types, aside).
- No import cycle between first-party modules (imports for type checking only aside).
- Dependencies point one way: each rule below names a layer and what it may not import.
- No SQL function is defined in two files.

Imports are read from the source (ast), every one, including those inside functions: a
lazy import is still a dependency.
"""

from __future__ import annotations

import ast
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("services", "shared", "qunma")
MAX_LINES = 400
# Modules that only declare types (request and response bodies, command inputs).
SCHEMA_MODULES = frozenset(
    {
        "services.issuer.api.schemas",
        "services.issuer.inputs",
        "services.redeemer.api.schemas",
    }
)

# Anything outside these packages that a layer may not use.
HTTP = ("aiohttp", "shared.http")
DATABASE = ("asyncpg", "shared.db", "shared.store")


@dataclass(frozen=True)
class Rule:
    """Modules under `layer` may import none of `forbidden` (module prefixes)."""

    layer: str
    forbidden: tuple[str, ...]
    why: str
    allowed: tuple[str, ...] = ()  # modules of the layer this rule does not apply to


def _redeemer(*parts: str) -> tuple[str, ...]:
    return tuple(f"services.redeemer.{p}" for p in parts)


def _issuer(*parts: str) -> tuple[str, ...]:
    return tuple(f"services.issuer.{p}" for p in parts)


RULES = (
    Rule(
        "shared",
        ("services", "qunma", "tests", "bench"),
        "the shared package serves both services and knows neither",
    ),
    Rule(
        "shared.rules",
        (*HTTP, *DATABASE, "shared.events", "shared.crypto", "shared.audit"),
        "a business rule is pure: no HTTP, no database",
    ),
    Rule("shared.refusals", (*HTTP, *DATABASE), "refusals are the domain's, not HTTP's"),
    Rule(
        "services.redeemer.domain",
        (
            *HTTP,
            *DATABASE,
            *_redeemer("application", "api", "web", "projections", "background"),
            *_redeemer("app", "context"),
        ),
        "the redeemer's rules are pure",
    ),
    Rule(
        "services.redeemer.application",
        (*HTTP, *_redeemer("api", "web", "projections", "background", "app", "context")),
        "the application decides; only api/ and web/ speak HTTP",
    ),
    Rule(
        "services.redeemer.projections",
        (*HTTP, *_redeemer("api", "web", "background", "app", "context")),
        "projections apply events; they answer no request",
    ),
    Rule(
        "services.redeemer.background",
        (*HTTP, *_redeemer("api", "web", "projections", "app", "context")),
        "background work runs on its own clock, not a request's",
    ),
    Rule(
        "services.redeemer.web",
        _redeemer("app", "application", "projections", "background", "api"),
        "the landing page's templates and forms know the domain's inputs only",
    ),
    Rule("services.redeemer.api", _redeemer("app"), "the composition root wires the api"),
    Rule(
        "services.issuer.domain",
        (*HTTP, *DATABASE, *_issuer("api", "handlers", "commands", "app", "context", "bus")),
        "the issuer's aggregates are pure",
    ),
    Rule(
        "services.issuer",
        (*HTTP, *_issuer("api", "app", "context")),
        "commands, handlers, projections and reactions know nothing of HTTP",
        allowed=_issuer("api", "app", "context"),
    ),
    Rule(
        "services.issuer.counters",
        _issuer("handlers", "bus", "commands"),
        "a projection records what happened; it does not act (reactions.py does)",
    ),
    Rule("services.issuer.api", _issuer("app"), "the composition root wires the api"),
    Rule(
        "qunma",
        ("services.issuer.app", "services.redeemer.app"),
        "tools use the services' parts, not their composition roots",
        allowed=("qunma.cli",),  # the launcher: it runs the services
    ),
)


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules(root: Path = ROOT) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            found[_module_name(path, root)] = path
    return found


def _type_checking_only(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def imports_of(path: Path, name: str, known: Iterable[str]) -> set[str]:
    """The modules `name` imports: first-party ones resolved to a module, others as written."""
    known = set(known)
    tree = ast.parse(path.read_text(), str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    skip: set[int] = set()
    for node in ast.walk(tree):
        if _type_checking_only(node):
            skip.update(id(n) for n in ast.walk(node))
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                full = f"{base}.{alias.name}"
                found.add(full if full in known else base)
    return {m for m in found if m != name}


def graph(root: Path = ROOT) -> dict[str, set[str]]:
    mods = modules(root)
    return {name: imports_of(path, name, mods) for name, path in mods.items()}


def _under(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def layering(edges: Mapping[str, set[str]], rules: Iterable[Rule] = RULES) -> list[str]:
    problems = []
    for module, imported in sorted(edges.items()):
        for rule in rules:
            if not _under(module, rule.layer) or any(_under(module, a) for a in rule.allowed):
                continue
            for target in sorted(imported):
                if any(_under(target, f) for f in rule.forbidden):
                    problems.append(f"{module} imports {target}: {rule.why}")
    return problems


def cycles(edges: Mapping[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def visit(v: str) -> None:
        nonlocal counter
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in edges:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return sorted(found)


def _is_package(name: str, edges: Mapping[str, set[str]]) -> bool:
    return any(other.startswith(name + ".") for other in edges)


def sizes(mods: Mapping[str, Path], root: Path = ROOT, limit: int = MAX_LINES) -> list[str]:
    problems = []
    for name, path in sorted(mods.items()):
        lines = len(path.read_text().splitlines())
        if lines > limit and name not in SCHEMA_MODULES:
            problems.append(f"{path.relative_to(root)}: {lines} lines (at most {limit})")
    return problems


_FUNCTION = re.compile(r"CREATE\s+(?:OR\s+REPLACE\s+)?FUNCTION\s+([a-z_][a-z0-9_]*)", re.I)


def sql_functions(root: Path = ROOT) -> list[str]:
    """Every SQL function defined in more than one file."""
    where: dict[str, set[Path]] = {}
    for package in ("services", "shared"):
        for path in (root / package).rglob("*.sql"):
            text = re.sub(r"--[^\n]*", "", path.read_text())
            for match in _FUNCTION.finditer(text):
                where.setdefault(match.group(1).lower(), set()).add(path.relative_to(root))
    return [
        f"SQL function {name} is defined in {', '.join(sorted(map(str, paths)))}"
        for name, paths in sorted(where.items())
        if len(paths) > 1
    ]


def check(root: Path = ROOT) -> list[str]:
    mods = modules(root)
    edges = graph(root)
    # A package's __init__ importing its own modules is how a package is assembled, not a
    # dependency loop: only cycles between modules count.
    plain = {
        name: {t for t in targets if not (_is_package(name, edges) and _under(t, name))}
        for name, targets in edges.items()
    }
    problems = sizes(mods, root)
    problems += [f"import cycle: {' -> '.join(c)}" for c in cycles(plain)]
    problems += layering(edges)
    problems += sql_functions(root)
    return problems


def main() -> int:
    problems = check()
    for problem in problems:
        print(problem)
    mods = modules()
    print(
        f"structure: {len(mods)} modules, {sum(len(v) for v in graph().values())} imports, "
        f"{len(problems)} problem(s)"
    )
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
