#!/usr/bin/env python3
"""Fails when the library's modules import each other in a cycle.

A module is a file under src/ (a folder's mod.rs is the folder), named by its path: `net::http`,
`transfer`, `pull::plan`. An edge A -> B exists when A's non-test code names `crate::B...`.
Parent/child edges inside one folder (a folder's mod.rs declaring or re-exporting its children)
are part of the folder, not imports, and are ignored; `super::` paths are resolved.
"""
import pathlib
import re
import sys

SRC = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "src")


def module_of(path: pathlib.Path) -> str:
    rel = path.relative_to(SRC).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] in ("mod", "lib"):
        parts = parts[:-1]
    return "::".join(parts)


def code_without_tests(text: str) -> str:
    out, skip_depth, depth, pending = [], None, 0, False
    for line in text.splitlines():
        # Doc links and comments name modules without depending on them.
        line = re.sub(r"//.*", "", line)
        stripped = line.strip()
        if skip_depth is None and stripped.startswith("#[cfg(test)]"):
            pending = True
            continue
        if pending and skip_depth is None:
            pending = False
            if re.match(r"(pub(\(\w+\))?\s+)?mod\s+\w+\s*\{", stripped):
                skip_depth = depth
            elif re.match(r"(pub(\(\w+\))?\s+)?mod\s+\w+\s*;", stripped):
                continue  # a test module in its own file: skipped below by name
        opens, closes = line.count("{"), line.count("}")
        if skip_depth is None:
            out.append(line)
        depth += opens - closes
        if skip_depth is not None and depth <= skip_depth:
            skip_depth = None
    return "\n".join(out)


modules = {}
for f in sorted(SRC.rglob("*.rs")):
    if "bin" in f.relative_to(SRC).parts or f.name == "tests.rs":
        continue
    modules[module_of(f)] = code_without_tests(f.read_text())
names = set(modules)

# Items a folder re-exports from its children (`pub(crate) use child::{A, B};`): a path through
# the folder to such an item depends on the child.
reexports = {}
for mod, text in modules.items():
    for m in re.finditer(r"pub(?:\([\w:]+\))?\s+use\s+(\w+)::(\{[^}]*\}|\w+)\s*;", text):
        child = f"{mod}::{m.group(1)}" if mod else m.group(1)
        if child not in names:
            continue
        for item in m.group(2).strip("{}").split(","):
            item = item.strip().split(" as ")[-1].strip()
            if item:
                reexports[(mod, item)] = child


def resolve(mod: str, path: str) -> str | None:
    """The longest known module that `path` (crate-relative, `::`-separated) lies in."""
    parts = path.split("::")
    for n in range(len(parts), 0, -1):
        cand = "::".join(parts[:n])
        if cand in names:
            if n < len(parts) and (cand, parts[n]) in reexports:
                return reexports[(cand, parts[n])]
            return cand
    return None


edges = {m: set() for m in modules}
for mod, text in modules.items():
    here = mod.split("::") if mod else []
    for m in re.finditer(r"\b(crate|super)((?:::\w+)+)", text):
        root, rest = m.group(1), m.group(2).lstrip(":")
        base = [] if root == "crate" else here[:-1]
        target = resolve(mod, "::".join(base + rest.split("::")))
        if not target or target == mod:
            continue
        # A folder and its own children are one unit.
        if target.startswith(mod + "::") or mod.startswith(target + "::") and target != "":
            continue
        edges[mod].add(target)
    # Groups: `crate::a::{B, c::D}` names each item through `a`.
    for g in re.finditer(r"\b(crate|super)((?:::\w+)*)::\{([^}]*)\}", text):
        base = ([] if g.group(1) == "crate" else here[:-1]) + [p for p in g.group(2).split("::") if p]
        for item in g.group(3).split(","):
            item = item.strip().split("::{")[0].split(" as ")[0].strip()
            if not item or item == "self":
                continue
            target = resolve(mod, "::".join(base + item.split("::")))
            if target and target != mod and not target.startswith(mod + "::") and not mod.startswith(target + "::"):
                edges[mod].add(target)

# Tarjan's strongly connected components.
index, low, stack, on, sccs, counter = {}, {}, [], set(), [], [0]


def visit(v):
    index[v] = low[v] = counter[0]
    counter[0] += 1
    stack.append(v)
    on.add(v)
    for w in edges[v]:
        if w not in index:
            visit(w)
            low[v] = min(low[v], low[w])
        elif w in on:
            low[v] = min(low[v], index[w])
    if low[v] == index[v]:
        comp = []
        while True:
            w = stack.pop()
            on.discard(w)
            comp.append(w)
            if w == v:
                break
        if len(comp) > 1:
            sccs.append(sorted(comp))


sys.setrecursionlimit(10000)
for v in modules:
    if v not in index:
        visit(v)

if sccs:
    for comp in sccs:
        inside = [f"{a} -> {b}" for a in comp for b in sorted(edges[a]) if b in comp]
        print("import cycle among " + ", ".join(comp) + ": " + "; ".join(inside))
    sys.exit(1)
print(f"{len(modules)} modules, {sum(len(e) for e in edges.values())} imports, no cycles")
