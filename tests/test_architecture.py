"""The architecture of ``kwslab``, checked by reading the source (``ast``; nothing is imported).

Every ``import`` in every module counts, including those inside functions and under ``TYPE_CHECKING``: a lazy
import still ties two modules together. An arrow runs from a module to the module it names:
``from kwslab.pkg import name`` points at ``kwslab.pkg.name`` when that is a module, else at ``kwslab.pkg`` (the
package's ``__init__``, whose re-exports the importer then depends on); relative imports are resolved first.

Checked: every kwslab import names a module that exists; no import cycles; no ``_private`` name taken from another
package; packages layered as :data:`LAYERS` says (no arrow runs back up); every top-level module of ``kwslab/`` is a
command (``main()`` and a ``__main__`` guard) or one of the libraries named in :data:`LAYERS`.
"""
from __future__ import annotations

import ast
from collections import defaultdict
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "kwslab"

# The layers, lowest first. A module may import modules of its own unit and of the units of LOWER layers; the
# units that share a layer are independent (neither imports the other). A unit is a tuple of module-name
# prefixes (``kwslab.data`` covers kwslab/data/ and everything under it); the longest matching prefix decides.
# A prefix that names no module yet is fine (kwslab/inference/ and kwslab/adaptation/ are being created).
# Top-level modules of kwslab/ that no prefix covers are commands: the top layer, one unit each.
LAYERS: list[list[tuple[str, ...]]] = [
    # foundations: WAV files; the character vocabulary; error rates and confusion matrices; atomic file writes
    [("kwslab.audio",), ("kwslab.text",), ("kwslab.metrics",), ("kwslab.files",)],
    # features from samples (NumPy)
    [("kwslab.dsp",)],
    # waveform and SpecAugment transforms
    [("kwslab.augment",)],
    # manifests, corpus preparers, datasets, datamodules
    [("kwslab.data",)],
    # speech synthesis; the corpora it writes as manifests; the datamodules that build them
    [("kwslab.tts",)],
    # compatibility shim: re-exports kwslab.tts.datamodules at the class paths older configs name
    [("kwslab.data.synthetic",)],
    # plain networks; CTC decoding and its settings (NumPy); checkpoint files
    [("kwslab.nets",), ("kwslab.decoding",), ("kwslab.checkpoint",)],
    # LightningModules
    [("kwslab.models",)],
    # streaming detection: what it needs from a model (a Backend), detector, its metrics and evaluation
    [("kwslab.stream",)],
    # a trained model, loaded once, whatever its file, and the backends built on it. kwslab/inference.py,
    # onnx_infer.py and transcribe.py are moving into the package kwslab/inference/ (issue 14); until then they
    # are this unit.
    [("kwslab.inference", "kwslab.onnx_infer", "kwslab.transcribe")],
    # adapting a loaded model to new audio (BatchNorm statistics, self-training); serving a loaded model over HTTP
    # (kwslab.serving, the library of `python -m kwslab.serve`: it sits on inference and stream, and neither it nor
    # adaptation imports the other)
    [("kwslab.adaptation",), ("kwslab.serving",)],
    # what the training command plugs into Lightning; a config's recipe (its manifests and prepare commands)
    [("kwslab.callbacks", "kwslab.averaging"), ("kwslab.loggers",), ("kwslab.recipes",)],
    # (top) the commands: every other kwslab/*.py
]

# Arrows the checks below let pass: known violations in code being moved, each with a comment saying why and until
# when. Empty: the inference-package move removed the last ones (onnx_infer <-> stream/backend, stream/backend ->
# inference, evaluate -> adapt). A test fails when an entry's arrow no longer exists.
KNOWN_VIOLATIONS: set[tuple[str, str]] = set()


@dataclass(frozen=True)
class Arrow:
    """``importer`` names ``target`` (a kwslab module) at ``line``; ``private`` is the ``_name`` it takes, if any."""

    importer: str
    target: str
    line: int
    private: str = ""


def is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


@lru_cache(maxsize=1)
def modules() -> dict[str, Path]:
    """Every module under kwslab/ by dotted name (a package by the name of its ``__init__``)."""
    found = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def package_of(module: str) -> str:
    """The package a module's relative imports start from."""
    return module if modules()[module].name == "__init__.py" else module.rpartition(".")[0]


def owner(module: str) -> str:
    """Whose private names a module may use: its first-level package (``kwslab.data``), or a top-level module alone."""
    return ".".join(module.split(".")[:2])


def _absolute(importer: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = package_of(importer).split(".")
    base = base[:len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _private_part(dotted: str) -> str:
    return next((p for p in dotted.split(".") if is_private(p)), "")


@lru_cache(maxsize=None)
def arrows_of(importer: str) -> tuple[Arrow, ...]:
    """Every arrow from ``importer``, plus ``alias._name`` uses of a kwslab module it bound to a name."""
    tree = ast.parse(modules()[importer].read_text(encoding="utf-8"), str(modules()[importer]))
    found: list[Arrow] = []
    bound: dict[str, str] = {}  # local name -> kwslab module it stands for
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "kwslab":
                    found.append(Arrow(importer, alias.name, node.lineno, _private_part(alias.name)))
                    if alias.asname:
                        bound[alias.asname] = alias.name
                    else:
                        bound["kwslab"] = "kwslab"
        elif isinstance(node, ast.ImportFrom):
            source = _absolute(importer, node)
            if source.split(".")[0] != "kwslab":
                continue
            for alias in node.names:
                sub = f"{source}.{alias.name}"
                if sub in modules():
                    found.append(Arrow(importer, sub, node.lineno, _private_part(sub)))
                    bound[alias.asname or alias.name] = sub
                else:
                    private = _private_part(source) or (alias.name if is_private(alias.name) else "")
                    found.append(Arrow(importer, source, node.lineno, private))
    for node in ast.walk(tree):  # wavio._read(...) after ``from kwslab.audio import io as wavio``
        if isinstance(node, ast.Attribute) and is_private(node.attr):
            chain, value = [node.attr], node.value
            while isinstance(value, ast.Attribute):
                chain.insert(0, value.attr)
                value = value.value
            if isinstance(value, ast.Name) and value.id in bound:
                dotted = ".".join([bound[value.id], *chain])
                target = max((m for m in modules() if dotted.startswith(m + ".")), key=len, default="")
                if target:
                    found.append(Arrow(importer, target, node.lineno, _private_part(dotted[len(target) + 1:])))
    return tuple(found)


def graph() -> dict[str, set[str]]:
    """Module -> the kwslab modules it imports (self-arrows and exempt arrows left out)."""
    edges: dict[str, set[str]] = defaultdict(set)
    for name in modules():
        for arrow in arrows_of(name):
            if arrow.target != name and arrow.target in modules() and (name, arrow.target) not in KNOWN_VIOLATIONS:
                edges[name].add(arrow.target)
    return edges


def find_cycle(edges: dict[str, set[str]]) -> list[str]:
    """One import cycle as ``[a, b, ..., a]``, or ``[]`` (depth-first search; the graph is small)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        path.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return []

    for start in sorted(edges):
        if start not in state and (cycle := visit(start)):
            return cycle
    return []


def find_cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Import cycles, one at a time: each found cycle loses its closing arrow before the next search."""
    edges = {k: set(v) for k, v in edges.items()}
    cycles = []
    while cycle := find_cycle(edges):
        cycles.append(cycle)
        edges[cycle[-2]].discard(cycle[-1])
    return cycles


def _covers(prefix: str, module: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def place(module: str) -> tuple[int, tuple[str, ...]]:
    """(layer index, unit) of a module; the root package is below everything, unlisted top-level modules on top."""
    if module == "kwslab":
        return -1, ("kwslab",)
    matches = [(len(p), i, unit) for i, layer in enumerate(LAYERS) for unit in layer for p in unit
               if _covers(p, module)]
    if matches:
        _, i, unit = max(matches)
        return i, unit
    if module.count(".") == 1 and modules()[module].name != "__init__.py":
        return len(LAYERS), (module,)
    raise AssertionError(f"{module} is in no layer: add its package to LAYERS in {Path(__file__).name}")


def is_command(module: str) -> bool:
    tree = ast.parse(modules()[module].read_text(encoding="utf-8"))
    has_main = any(isinstance(n, ast.FunctionDef) and n.name == "main" for n in tree.body)
    guard = any(isinstance(n, ast.If) and "__name__" in ast.unparse(n.test) and "__main__" in ast.unparse(n.test)
                for n in tree.body)
    return has_main and guard


# ----------------------------------------------------------------------------------------------------------------


def test_the_checks_see_the_package() -> None:
    assert {"kwslab", "kwslab.audio.io", "kwslab.dsp", "kwslab.data.manifest", "kwslab.fit"} <= set(modules())
    assert len(graph()) > 30  # the walker found imports (a parse that finds none would pass everything below)


def test_arrow_resolution_on_known_lines() -> None:
    """``from kwslab.pkg import sub`` points at the submodule; ``from kwslab.pkg import name`` at the package."""
    targets = {a.target for a in arrows_of("kwslab.data.datasets")}
    assert {"kwslab.augment", "kwslab.data.manifest", "kwslab.dsp", "kwslab.audio"} <= targets
    assert "kwslab.decoding._small_step" in {a.target for a in arrows_of("kwslab.decoding._prefix_search")}
    assert "kwslab.dsp.features" in {a.target for a in arrows_of("kwslab.dsp.config")}  # relative or absolute


def test_find_cycle_reports_a_cycle_and_accepts_a_tree() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) == []
    assert find_cycles({"a": {"b"}, "b": {"a"}, "c": {"d"}, "d": {"c"}}) == [["a", "b", "a"], ["c", "d", "c"]]


def test_every_kwslab_import_names_an_existing_module() -> None:
    missing = sorted({f"{a.importer}:{a.line} imports {a.target}" for name in modules() for a in arrows_of(name)
                      if a.target not in modules()})
    assert not missing, "imports of kwslab modules that do not exist:\n" + "\n".join(missing)


def test_no_import_cycles() -> None:
    cycles = find_cycles(graph())
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_no_private_names_from_another_package() -> None:
    bad = sorted({f"{a.importer}:{a.line} takes {a.private} from {a.target}" for name in modules()
                  for a in arrows_of(name)
                  if a.private and owner(a.importer) != owner(a.target)
                  and (a.importer, a.target) not in KNOWN_VIOLATIONS})
    assert not bad, "private names used across packages (make them public API of their owner):\n" + "\n".join(bad)


def test_layering_no_arrow_runs_back_up() -> None:
    bad = []
    for name in sorted(modules()):
        layer, unit = place(name)
        for target in sorted(graph().get(name, ())):
            t_layer, t_unit = place(target)
            if t_unit != unit and t_layer >= layer:
                how = "up" if t_layer > layer else "sideways (independent units of one layer)"
                bad.append(f"{name} (layer {layer}) -> {target} (layer {t_layer}): {how}")
    assert not bad, "arrows against LAYERS:\n" + "\n".join(bad)


@pytest.mark.parametrize("module", sorted(m for m in modules() if m.count(".") == 1 and not modules()[m].name
                                          == "__init__.py"))
def test_top_level_module_is_a_command_or_a_listed_library(module: str) -> None:
    if place(module)[0] < len(LAYERS):  # listed in LAYERS: a library
        return
    assert is_command(module), (f"{module} is neither a command (main() and an `if __name__ == '__main__'` guard) "
                                f"nor a library listed in LAYERS")


def test_exemptions_are_still_needed() -> None:
    """Every arrow in KNOWN_VIOLATIONS still exists; remove an entry once its arrow is gone."""
    present = {(a.importer, a.target) for name in modules() for a in arrows_of(name)}
    stale = sorted(KNOWN_VIOLATIONS - present)
    assert not stale, f"exempt arrows that no longer exist (delete them from the test): {stale}"
