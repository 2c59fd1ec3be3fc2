"""The shape the code keeps (tests/support/structure.py), and that the check sees a breach."""

from __future__ import annotations

from pathlib import Path

from tests.support import structure
from tests.support.structure import Rule


def test_the_repository_keeps_its_shape() -> None:
    assert structure.check() == []


def test_a_cycle_is_found_and_an_acyclic_graph_passes() -> None:
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert structure.cycles(edges) == [["a", "b", "c"]]
    assert structure.cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []


def test_a_layer_importing_what_it_may_not_is_named() -> None:
    rules = [Rule("svc.domain", ("aiohttp", "svc.api"), "pure"), Rule("svc", ("x",), "no x")]
    edges = {
        "svc.domain.rules": {"svc.domain.inputs", "svc.api.schemas", "aiohttp.web"},
        "svc.api.scans": {"svc.domain.rules", "aiohttp"},
        "svc.application": {"x.y"},
    }
    assert structure.layering(edges, rules) == [
        "svc.application imports x.y: no x",
        "svc.domain.rules imports aiohttp.web: pure",
        "svc.domain.rules imports svc.api.schemas: pure",
    ]


def test_imports_inside_functions_count_and_type_checking_ones_do_not(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text(
        "from typing import TYPE_CHECKING\n"
        "from pkg import sub\n"
        "if TYPE_CHECKING:\n"
        "    import hidden\n"
        "def f():\n"
        "    from lazy.place import thing\n"
    )
    found = structure.imports_of(module, "m", {"pkg.sub"})
    assert found == {"typing", "pkg.sub", "lazy.place"}


def test_a_function_defined_in_two_files_is_named(tmp_path: Path) -> None:
    (tmp_path / "services").mkdir()
    (tmp_path / "shared").mkdir()
    (tmp_path / "services" / "a.sql").write_text("CREATE FUNCTION qunma_x() RETURNS int ...")
    (tmp_path / "shared" / "b.sql").write_text(
        "-- CREATE FUNCTION qunma_y() in a comment does not count\n"
        "CREATE OR REPLACE FUNCTION qunma_x() RETURNS int ..."
    )
    assert structure.sql_functions(tmp_path) == [
        "SQL function qunma_x is defined in services/a.sql, shared/b.sql"
    ]


def test_a_long_module_is_named_unless_it_only_declares_types(tmp_path: Path) -> None:
    long = tmp_path / "long.py"
    long.write_text("x = 1\n" * 401)
    assert structure.sizes({"pkg.long": long}, tmp_path) == ["long.py: 401 lines (at most 400)"]
    schema = "services.redeemer.api.schemas"
    assert structure.sizes({schema: long}, tmp_path) == []
