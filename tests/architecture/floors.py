#!/usr/bin/env python3
"""Draws the floors of the runtime from its own includes and checks them.

Floors, ground up (docs/design.md): base -> wire, engines -> transport, bootstrap -> core ->
collectives -> rpc, farm -> api (runtime/src/api and the public headers). The
launcher stands beside the runtime and shares only base and wire with it.

An include may point down or sideways (same floor). One that points up must say why
on its own line, in a comment starting with `floors:`. The check fails on an
unexplained upward include, on any circle between folders, on a transport or the
launcher reaching beyond what they may, and on more than two folder pairs that run
up. It prints the table of includes between folders.
"""
import os
import re
import sys

FLOOR = {"base": 0, "wire": 1, "engines": 1, "transport": 2, "bootstrap": 2, "core": 3, "collectives": 4,
         "rpc": 5, "farm": 5, "api": 6}
INCLUDE = re.compile(r'^\s*#\s*include\s+["<]([^">]+)[">](.*)$')
OURS = tuple(list(FLOOR) + ["ipc"])


def folder_of(rel):
    """The folder a file of the tree belongs to, or None when not drawn."""
    parts = rel.split("/")
    if parts[:2] == ["runtime", "src"] and len(parts) > 3:
        return parts[2]
    if parts[:3] == ["runtime", "include", "ipc"]:
        return "api"
    if parts[0] == "launcher":
        return "launcher"
    return None


def target_of(path, source_folder):
    first = path.split("/")[0]
    if first == "ipc":
        return "api"
    if first in FLOOR:
        return first
    return source_folder  # a file beside the includer (the launcher's own)


def main(root):
    edges = {}       # (from, to) -> count
    upward = []      # (file, line, include, from, to, justified)
    for top in ("runtime", "launcher"):
        for dirpath, _, files in os.walk(os.path.join(root, top)):
            for name in sorted(files):
                if not name.endswith((".hpp", ".cpp")):
                    continue
                full = os.path.join(dirpath, name)
                rel = os.path.relpath(full, root)
                src = folder_of(rel)
                if src is None:
                    continue
                with open(full, encoding="utf-8") as f:
                    for number, line in enumerate(f, 1):
                        m = INCLUDE.match(line)
                        if not m:
                            continue
                        # A system header (<vector>, <asio.hpp>) is no floor of ours.
                        if "<" in line.split("include", 1)[1][:3] and m.group(1).split("/")[0] not in OURS:
                            continue
                        dst = target_of(m.group(1), src)
                        if dst == src:
                            continue
                        edges[(src, dst)] = edges.get((src, dst), 0) + 1
                        if src == "launcher":
                            if dst not in ("base", "wire"):
                                upward.append((rel, number, m.group(1), src, dst, False))
                        elif FLOOR[dst] > FLOOR[src]:
                            upward.append((rel, number, m.group(1), src, dst, "floors:" in m.group(2)))

    print("includes between folders (from -> to: count):")
    for (a, b), n in sorted(edges.items()):
        mark = ""
        if a != "launcher" and FLOOR[b] > FLOOR[a]:
            mark = "  (up)"
        print(f"  {a:12} -> {b:12} {n:3}{mark}")

    failures = []
    for rel, number, inc, a, b, ok in upward:
        if not ok:
            failures.append(f"{rel}:{number}: #include \"{inc}\" runs up from {a} to {b} without a `floors:` reason")
    pairs = sorted({(a, b) for _, _, _, a, b, ok in upward if ok})
    if len(pairs) > 2:
        failures.append(f"{len(pairs)} folder pairs run up (at most 2): {pairs}")
    for rel, number, inc, a, b, ok in upward:
        if ok:
            print(f"explained upward include: {rel}:{number} {inc}")

    # Circles between folders.
    graph = {}
    for (a, b) in edges:
        graph.setdefault(a, set()).add(b)
    state = {}

    def visit(node, stack):
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                failures.append("circle between folders: " + " -> ".join(stack[stack.index(nxt):] + [nxt]))
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])

    for rel, number, inc, a, b, ok in upward:
        if a == "transport" and b == "api":
            failures.append(f"{rel}:{number}: a transport includes the public API ({inc})")

    if failures:
        for f in failures:
            print("FAIL:", f)
        return 1
    print(f"floors hold: {len(pairs)} explained upward folder pair(s), no circle")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else os.getcwd()))
