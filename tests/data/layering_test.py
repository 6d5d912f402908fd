"""The online input path never imports offline preparation."""

import ast
import pathlib

import uaf_tf.data

_DATA_DIR = pathlib.Path(uaf_tf.data.__file__).parent


def _imported_modules(path: pathlib.Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
    return names


def test_online_modules_do_not_import_preparation():
    online = sorted(_DATA_DIR.glob("*.py"))
    assert {p.name for p in online} >= {"pipelines.py", "dataset_info.py"}
    offenders = {
        p.name: sorted(
            n for n in _imported_modules(p) if "data.preparation" in n
        )
        for p in online
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_the_import_walk_sees_preparation_imports():
    # Guards the test above against a walk that finds nothing.
    names = _imported_modules(_DATA_DIR / "preparation" / "builders.py")
    assert "uaf_tf.data.preparation.movielens" in names
