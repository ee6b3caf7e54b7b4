"""The layout rules of the redesign (issue 12), checked so they stay true: small files and functions, no import
cycles between modules, no module reaching into another's private names, the layers of DESIGN.md respected."""
import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "alexnet"
MODULES = sorted(SRC.rglob("*.py"))
TRAINING_PATH = {"train.py", "train_data.py", "evaluate.py", "runfolder.py", "distributed.py", "optim.py",
                 "schedules.py", "checkpoint.py"}
MAX_FILE_LINES, MAX_FUNCTION_LINES, MAX_TRAINING_FUNCTION_LINES = 500, 80, 60
# argparse registration reads best as one list of flags
EXEMPT_FUNCTIONS = {"add_arguments", "register", "build_parser"}


def module_name(path: Path) -> str:
    parts = ["alexnet", *path.relative_to(SRC).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> list[tuple[str, list[str], int]]:
    """(absolute module, imported names, line) for every import of an alexnet module in ``path``."""
    here = module_name(path).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] == "alexnet":
                found.append((target, [a.name for a in node.names], node.lineno))
        elif isinstance(node, ast.Import):
            found += [(a.name, [], node.lineno) for a in node.names if a.name.split(".")[0] == "alexnet"]
    return found


def test_no_source_file_is_too_long():
    long = {str(p.relative_to(SRC)): n for p in MODULES if (n := p.read_text().count("\n")) > MAX_FILE_LINES}
    assert not long, f"files over {MAX_FILE_LINES} lines: {long}"


def test_no_function_is_too_long():
    long = []
    for path in MODULES:
        limit = MAX_TRAINING_FUNCTION_LINES if path.name in TRAINING_PATH else MAX_FUNCTION_LINES
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name not in EXEMPT_FUNCTIONS:
                if (n := node.end_lineno - node.lineno + 1) > limit:
                    long.append(f"{path.relative_to(SRC)}:{node.lineno} {node.name} ({n} > {limit} lines)")
    assert not long, "\n".join(long)


def test_no_module_imports_another_modules_private_names():
    private = [f"{path.relative_to(SRC)}:{line} imports {target}.{name}"
               for path in MODULES for target, names, line in imports(path)
               for name in names if name.startswith("_") and not name.startswith("__")]
    assert not private, "\n".join(private)


def module_graph(top_level_only: bool) -> dict[str, set[str]]:
    """Who imports whom at module import time (imports inside functions are deferred and cannot cycle at load)."""
    graph: dict[str, set[str]] = {}
    for path in MODULES:
        me = module_name(path)
        tree = ast.parse(path.read_text())
        deps = set()
        for target, names, line in imports(path):
            node_is_top = any(getattr(n, "lineno", None) == line for n in tree.body)
            if top_level_only and not node_is_top:
                continue
            for candidate in [f"{target}.{n}" for n in names] + [target]:
                if (SRC.parent / (candidate.replace(".", "/") + ".py")).exists() or \
                        (SRC.parent / candidate.replace(".", "/") / "__init__.py").exists():
                    if candidate != me:
                        deps.add(candidate)
        graph[me] = deps
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    colour, stack = {}, []

    def visit(node):
        colour[node] = "grey"
        stack.append(node)
        for dep in sorted(graph.get(node, ())):
            if dep.startswith(node + "."):      # a package importing its own submodules is not a cycle
                continue
            if colour.get(dep) == "grey" and not node.startswith(dep + "."):
                return stack[stack.index(dep):] + [dep]
            if dep not in colour and (cycle := visit(dep)):
                return cycle
        stack.pop()
        colour[node] = "black"
        return None

    for node in sorted(graph):
        if node not in colour and (cycle := visit(node)):
            return cycle
    return None


def test_no_import_cycle_between_modules():
    cycle = find_cycle(module_graph(top_level_only=True))
    assert cycle is None, " -> ".join(cycle)


# DESIGN.md's layers, top to bottom: a module may import its own layer and those below, never one above.  One
# change from DESIGN.md, found by this test: the weight files (the checkpoint record, interop's formats, the named
# weights registry) sit below the engine, not beside the verbs, because training starts from weights
# (`train --weights`) and `eval` loads them; they themselves need only the network and the bottom layer.
LAYERS = [
    {"cli", "serve", "__main__"},
    {"demo", "experiments", "bench", "bench_peak", "viz", "features", "predict"},
    {"train", "train_data", "evaluate", "distributed", "parallel", "optim", "recipes", "schedules", "runfolder",
     "metrics", "curves"},
    {"checkpoint", "interop", "weights"},
    {"model", "layers", "init"},
    {"data"},
    {"runtime", "errors", "utils", "choices", "config", "bench_config", "progress", "__init__"},
]


def layer_of(module: str) -> int | None:
    head = module.split(".")[1] if "." in module else "__init__"
    return next((i for i, names in enumerate(LAYERS) if head in names), None)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(SRC)))
def test_no_module_imports_a_layer_above_it(path):
    me = layer_of(module_name(path))
    assert me is not None, f"{module_name(path)} is in no layer of DESIGN.md: add it to LAYERS"
    if module_name(path) == "alexnet":
        return                                 # the package's lazy front door names everything
    above = [f"line {line}: {target}" for target, _, line in imports(path)
             if (layer := layer_of(target)) is not None and layer < me]
    assert not above, f"{path.relative_to(SRC)} imports from a layer above it: {above}"
