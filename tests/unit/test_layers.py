"""The layers are visible in folder names and imports only go down: a module may import its own
layer and the layers below it, never one above (CONVENTIONS: spec -> model -> cluster -> data
plane drivers -> runtime -> API -> client -> CLI). Outside the CLI (which imports lazily to keep
``k8semu --help`` fast), imports sit at the top of the module: a function-level import is how a
cycle hides."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2] / "emulator"
LAYER = {
    "": 0, "errors": 0, "status": 0,  # emulator/__init__, errors.py, status.py
    "model": 1,
    "spec": 2,
    "cluster": 3,
    # pure data-plane drivers, pod programs
    "pipeline": 4, "dns": 4, "ingress": 4, "images": 4, "kubeproxy": 4, "flannel": 4, "calico": 4, "faults": 4, "netpolicy": 4, "trace": 4,
    "controller": 5, "runtime": 5,
    "api": 6,
    "client": 7,  # the one client of the API: every verb, the shell, the scenario runner
    "scenario": 8, "cli": 8, "ui": 8, "__main__": 8,
}
LAZY_OK = {"cli", "scenario", "__main__"}


def layer_of(module: str) -> int:
    parts = module.split(".")
    assert parts[0] == "emulator", module
    name = parts[1] if len(parts) > 1 else ""
    return LAYER[name.removesuffix(".py")]


def modules():
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT.parent).with_suffix("")
        yield ".".join(rel.parts).removesuffix(".__init__"), path


def imports(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node, alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node, node.module


def test_every_import_goes_down_the_layers() -> None:
    wrong = []
    for module, path in modules():
        here = layer_of(module)
        for _, target in imports(ast.parse(path.read_text())):
            if target == "emulator" or target.startswith("emulator."):
                if target != "emulator" and layer_of(target) > here:
                    wrong.append(f"{module} imports {target}")
    assert wrong == []


def test_no_function_level_imports_outside_the_cli() -> None:
    wrong = []
    for module, path in modules():
        if module.split(".")[1] in LAZY_OK if "." in module else False:
            continue
        tree = ast.parse(path.read_text())
        top = {id(n) for n in tree.body}
        for node, target in imports(tree):
            if id(node) not in top and target.startswith("emulator"):
                wrong.append(f"{module}:{node.lineno} imports {target} inside a function")
    assert wrong == []
