#!/usr/bin/env python3
"""Finds import circles between the files of Rust crates.

Arrows should run one way: a file that imports another must not be
imported back, directly or through others. This reads each crate's module
tree from its root (`mod name;` declarations), collects every path a file
names (`use` statements with their brace groups, `crate::`/`super::`/
`self::` paths in code, and paths through child modules), resolves each
through `use` re-exports to the file that defines the item (so
`use crate::Ws` counts as an import of `ws.rs`, not of `lib.rs`), and
prints every group of files that import each other (a strongly connected
component of the file graph). Comments and string literals are ignored.

    tools/import_cycles.py crates/ringcast crates/ringcast-proto ...
    tools/import_cycles.py --edges crates/ringcast    # print the arrows too

Exit status: 0 when no crate has a circle, 1 otherwise, 2 on bad usage.
A parser of this size knows only what the project uses: `mod` with a
`#[path]` attribute and macros that build paths are not followed.
"""
import argparse
import os
import re
import sys

IDENT = r"[A-Za-z_][A-Za-z0-9_]*"


def strip(text):
    """Blanks out comments, string and char literals (keeps offsets)."""
    out = list(text)
    i, n = 0, len(text)

    def blank(a, b):
        for k in range(a, b):
            if out[k] != "\n":
                out[k] = " "

    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            blank(i, j)
            i = j
        elif text.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if text.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            blank(i, j)
            i = j
        elif c == "r" and re.match(r'r#*"', text[i:i + 10]) and (i == 0 or not re.match(r"\w", text[i - 1])):
            hashes = re.match(r'r(#*)"', text[i:]).group(1)
            end = text.find('"' + hashes, i + 2 + len(hashes))
            end = n if end < 0 else end + 1 + len(hashes)
            blank(i, end)
            i = end
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            blank(i, j + 1)
            i = j + 1
        elif c == "'":
            # A char literal ('a', '\n', '\u{..}'), not a lifetime ('a).
            m = re.match(r"'(\\u\{[0-9a-fA-F]+\}|\\.|[^\\'])'", text[i:])
            if m:
                blank(i, i + len(m.group(0)))
                i += len(m.group(0))
            else:
                i += 1
        else:
            i += 1
    return "".join(out)


def expand_use(tree):
    """`a::{b, c::{d, self}}` -> [['a','b'], ['a','c','d'], ['a','c']]."""
    tree = re.sub(r"\s+", "", tree)
    tree = re.sub(r"\bas\b" + IDENT, "", tree)

    def parse(s, prefix):
        paths = []
        depth, start, parts = 0, 0, []
        for k, ch in enumerate(s):
            if ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
            elif ch == "," and depth == 0:
                parts.append(s[start:k])
                start = k + 1
        parts.append(s[start:])
        for part in parts:
            if not part:
                continue
            brace = part.find("{")
            if brace >= 0:
                head = [seg for seg in part[:brace].split("::") if seg]
                paths += parse(part[brace + 1:part.rindex("}")], prefix + head)
            else:
                segs = [seg for seg in part.split("::") if seg]
                if segs == ["self"]:
                    paths.append(prefix)
                elif segs:
                    paths.append(prefix + segs)
        return paths

    return parse(tree, [])


class Module:
    def __init__(self, path, file, is_dir_owner):
        self.path = path  # ['crate', 'shard', 'conn']
        self.file = file
        # A mod.rs / lib.rs owns a directory: its children live below it.
        self.is_dir_owner = is_dir_owner
        self.children = {}  # name -> module path
        self.uses = {}  # name brought in by `use` -> full path
        self.code = ""
        self.inline = []  # (start, end, [inline module names])


def load_crate(root_file):
    modules = {}

    def visit(path, file, owner):
        text = open(file, encoding="utf-8").read()
        m = Module(path, file, owner)
        m.code = strip(text)
        modules[tuple(path)] = m
        base = os.path.dirname(file) if owner else os.path.splitext(file)[0]
        # Inline `mod name {` blocks: record their spans.
        for im in re.finditer(r"\bmod\s+(" + IDENT + r")\s*\{", m.code):
            depth, j = 1, im.end()
            while j < len(m.code) and depth:
                depth += {"{": 1, "}": -1}.get(m.code[j], 0)
                j += 1
            m.inline.append((im.start(), j, im.group(1)))
        for dm in re.finditer(r"\bmod\s+(" + IDENT + r")\s*;", m.code):
            if any(a <= dm.start() < b for a, b, _ in m.inline):
                continue
            name = dm.group(1)
            for candidate, child_owner in ((os.path.join(base, name + ".rs"), False),
                                           (os.path.join(base, name, "mod.rs"), True)):
                if os.path.exists(candidate):
                    m.children[name] = path + [name]
                    visit(path + [name], candidate, child_owner)
                    break
        return m

    visit(["crate"], root_file, True)
    return modules


def module_at(m, offset):
    """The module path in force at `offset` of m's file (inline modules)."""
    path = list(m.path)
    for start, end, name in sorted(m.inline):
        if start <= offset < end:
            path.append(name)
    return path


def absolute(segs, here):
    """Makes a path absolute from module `here`; None if it is external."""
    segs = list(segs)
    cur = None
    if segs[0] == "crate":
        cur, segs = ["crate"], segs[1:]
    elif segs[0] in ("self", "super"):
        cur = list(here)
        while segs and segs[0] in ("self", "super"):
            if segs[0] == "super":
                cur = cur[:-1]
            segs = segs[1:]
    else:
        return None
    return cur + segs


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("crates", nargs="+", help="crate directories (with src/lib.rs or src/main.rs)")
    ap.add_argument("--edges", action="store_true", help="print every file-to-file arrow")
    args = ap.parse_args()
    found = False
    for crate in args.crates:
        root = next((os.path.join(crate, "src", f) for f in ("lib.rs", "main.rs")
                     if os.path.exists(os.path.join(crate, "src", f))), None)
        if root is None:
            print(f"{crate}: no src/lib.rs or src/main.rs", file=sys.stderr)
            sys.exit(2)
        modules = load_crate(root)
        # Every `use` of every module (and its inline modules): name -> path.
        scopes = {}
        for m in modules.values():
            for um in re.finditer(r"\buse\s+([^;]+);", m.code):
                here = module_at(m, um.start())
                scope = scopes.setdefault(tuple(here), {})
                for segs in expand_use(um.group(1)):
                    if segs[-1] == "*":
                        continue
                    full = absolute(segs, here)
                    if full is None and segs[0] in m.children and here == m.path:
                        full = m.path + segs
                    if full is not None and full[-1] not in ("self", "super", "crate"):
                        scope[full[-1]] = full
            for name, child in m.children.items():
                scopes.setdefault(tuple(m.path), {}).setdefault(name, child)

        def file_of(full, seen=0):
            """The file defining the item at `full`, through re-exports."""
            if seen > 20:
                return None
            # The longest prefix that is a module.
            k = len(full)
            while k > 0 and tuple(full[:k]) not in modules:
                k -= 1
            if k == 0:
                return None
            mod = modules[tuple(full[:k])]
            if k < len(full):
                name = full[k]
                alias = scopes.get(tuple(full[:k]), {}).get(name)
                if alias is not None and alias != full[:k + 1]:
                    target = file_of(alias + full[k + 1:], seen + 1)
                    if target is not None:
                        return target
            return mod.file

        edges = {}
        for m in modules.values():
            refs = []
            for um in re.finditer(r"\buse\s+([^;]+);", m.code):
                here = module_at(m, um.start())
                for segs in expand_use(um.group(1)):
                    if segs and segs[-1] == "*":
                        segs = segs[:-1]
                    full = absolute(segs, here) if segs else None
                    if full is None and segs and segs[0] in m.children:
                        full = m.path + segs
                    if full is not None:
                        refs.append(full)
            code_wo_use = re.sub(r"\buse\s+[^;]+;", lambda x: " " * len(x.group(0)), m.code)
            for pm in re.finditer(r"(?<![\w:])((?:crate|super|self)(?:::" + IDENT + ")+)", code_wo_use):
                full = absolute(pm.group(1).split("::"), module_at(m, pm.start()))
                if full is not None:
                    refs.append(full)
            # Paths through a child module or an imported name: `dial::fail`.
            local = scopes.get(tuple(m.path), {})
            for pm in re.finditer(r"(?<![\w:])(" + IDENT + r")((?:::" + IDENT + ")+)", code_wo_use):
                head = pm.group(1)
                if head in ("crate", "super", "self", "Self", "std", "core", "alloc"):
                    continue
                if head in local:
                    refs.append(local[head] + pm.group(2).split("::")[1:])
            for full in refs:
                target = file_of(full)
                if target is not None and target != m.file:
                    edges.setdefault(m.file, set()).add(target)

        # Tarjan's strongly connected components.
        index, low, stack, on, sccs = {}, {}, [], set(), []
        counter = [0]

        def strong(v):
            index[v] = low[v] = counter[0]
            counter[0] += 1
            stack.append(v)
            on.add(v)
            for w in sorted(edges.get(v, ())):
                if w not in index:
                    strong(w)
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
        for v in sorted(m.file for m in modules.values()):
            if v not in index:
                strong(v)
        rel = lambda f: os.path.relpath(f, crate)
        if args.edges:
            for a in sorted(edges):
                for b in sorted(edges[a]):
                    print(f"{crate}: {rel(a)} -> {rel(b)}")
        if sccs:
            found = True
            for comp in sccs:
                print(f"{crate}: circle of {len(comp)} files: {', '.join(rel(f) for f in comp)}")
                for a in comp:
                    for b in sorted(edges.get(a, ())):
                        if b in comp:
                            print(f"    {rel(a)} -> {rel(b)}")
        else:
            print(f"{crate}: {len(modules)} files, no import circle")
    sys.exit(1 if found else 0)


if __name__ == "__main__":
    main()
