#!/usr/bin/env python3
"""Reports dependency cycles between the modules of each crate (exit status 1 when there is one).

Why: the design asks for a module graph without cycles (shared types live in a neutral module that
both sides import). This check runs from scripts/test.sh so that a cycle cannot come back unnoticed.

What counts as a dependency of a module: every path it names that leads into its own crate, both in
`use` declarations (grouped trees `use crate::{a, b::{c, d}}`, `self`, `super`, renames) and inline in
the code (`crate::metrics::add(1)`, `super::call::body_bytes(..)`, `conn::Thing` after
`use super::conn`). A path is resolved to the innermost file module it names; a name a module merely
imports (`pub use conn::HttpHandler` in http/mod.rs) is followed to the module that defines it.
Inline modules (`mod tests { .. }`) belong to their file. Test code counts like any other code.

A dependency between a module and one of its ancestors or descendants (`http::conn` and
`http::conn::app`, `static_files` and `static_files::root`) is how a parent and its children are meant
to work together and is left out. Every other cycle — sibling ↔ sibling, or a module ↔ a module that
is not its descendant — is reported as a strongly connected component, with each dependency inside
it and the line that makes it.

Usage: scripts/module_cycles.py [CRATE_SRC_DIR ...]   (default: every crates/*/src)
Plain Python 3, no dependencies: the Rust is read with a small tokenizer, not compiled.
"""

import os
import re
import sys
from collections import defaultdict

KEYWORDS = {
    "as", "async", "await", "break", "const", "continue", "crate", "dyn", "else", "enum", "extern",
    "false", "fn", "for", "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub",
    "ref", "return", "self", "Self", "static", "struct", "super", "trait", "true", "type", "unsafe",
    "use", "where", "while", "union",
}
ITEM_KEYWORDS = {"fn", "struct", "enum", "trait", "type", "const", "static", "union", "mod"}


def strip_comments_and_literals(text):
    """Blanks out comments, string and character literals, keeping every newline (for line numbers)."""
    out = []
    i, n = 0, len(text)

    def blank(segment):
        out.append("".join("\n" if c == "\n" else " " for c in segment))

    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            blank(text[i:j])
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
            blank(text[i:j])
            i = j
        elif re.match(r'(?:b|c)?r#*"', text[i:i + 260]) and (i == 0 or not is_ident_char(text[i - 1])):
            m = re.match(r'(?:b|c)?r(#*)"', text[i:])
            close = '"' + m.group(1)
            j = text.find(close, i + m.end())
            j = n if j < 0 else j + len(close)
            blank(text[i:j])
            i = j
        elif c == '"' or (c in "bc" and text.startswith('"', i + 1)
                          and (i == 0 or not is_ident_char(text[i - 1]))):
            j = i + (2 if c != '"' else 1)
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            blank(text[i:j + 1])
            i = j + 1
        elif c == "'" or (c == "b" and text.startswith("'", i + 1)
                          and (i == 0 or not is_ident_char(text[i - 1]))):
            start = i + (2 if c == "b" else 1)
            m = re.match(r"(\\u\{[0-9a-fA-F]+\}|\\x[0-9a-fA-F]{2}|\\.|[^\\'\n])'", text[start:])
            if m:  # a character literal; otherwise a lifetime or a label, kept as it is
                blank(text[i:start + m.end()])
                i = start + m.end()
            else:
                out.append(c)
                i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def is_ident_char(c):
    return c.isalnum() or c == "_"


TOKEN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|::|\S")


def tokenize(text):
    tokens = []
    line = 1
    last = 0
    for m in TOKEN.finditer(text):
        line += text.count("\n", last, m.start())
        last = m.start()
        tokens.append((m.group(), line))
    return tokens


def parse_use_tree(tokens):
    """The (path segments, bound name) pairs of a use tree; the bound name is "*" for a glob."""
    result = []

    def tree(pos, prefix):
        segments = list(prefix)
        if pos < len(tokens) and tokens[pos][0] == "::" and not segments:
            segments.append("::")
            pos += 1
        while pos < len(tokens):
            tok = tokens[pos][0]
            if tok == "{":
                pos += 1
                while pos < len(tokens) and tokens[pos][0] != "}":
                    pos = tree(pos, segments)
                    if pos < len(tokens) and tokens[pos][0] == ",":
                        pos += 1
                return pos + 1
            if tok == "*":
                result.append((segments, "*"))
                return pos + 1
            if re.match(r"[A-Za-z_]\w*$", tok):
                segments.append(tok)
                pos += 1
                if pos < len(tokens) and tokens[pos][0] == "::":
                    pos += 1
                    continue
                alias = segments[-1]
                if alias == "self":  # `use a::b::{self}` binds `b`
                    segments = segments[:-1]
                    alias = segments[-1] if segments else "self"
                if pos + 1 < len(tokens) and tokens[pos][0] == "as":
                    alias = tokens[pos + 1][0]
                    pos += 2
                result.append((segments, alias))
                return pos
            return pos + 1  # something this reader does not know: skip it

    pos = 0
    while pos < len(tokens):
        pos = tree(pos, [])
    return result


class Module:
    """One module: a file, or an inline `mod name { .. }` inside one (then `file` is its file's)."""

    def __init__(self, path, file, source):
        self.path = path            # tuple of names below the crate root
        self.file = file            # the tuple path of the file module it belongs to
        self.source = source        # the file it is written in
        self.children = {}          # name -> tuple path (declared with `mod`)
        self.items = set()          # names defined here
        self.imports = {}           # name -> (absolute path segments) from `use`
        self.globs = []             # absolute paths of `use x::*`
        self.references = []        # (raw path segments, line) to resolve later


class Crate:
    def __init__(self, src_dir):
        self.src_dir = src_dir
        self.modules = {}  # tuple path -> Module

    def load(self, root_file):
        self._load_file((), root_file, mod_rs=True)

    def _load_file(self, path, file_name, mod_rs):
        with open(file_name, encoding="utf-8") as f:
            text = strip_comments_and_literals(f.read())
        module = Module(path, path, file_name)
        self.modules[path] = module
        directory = os.path.dirname(file_name)
        if not mod_rs:
            directory = os.path.join(directory, os.path.splitext(os.path.basename(file_name))[0])
        self._parse(tokenize(text), module, directory)

    def _parse(self, tokens, file_module, directory):
        # Each entry: (module, brace depth of its body); the file module's body is depth 0.
        stack = [(file_module, 0)]
        depth = 0
        pending_path_attr = None
        i = 0
        while i < len(tokens):
            tok, line = tokens[i]
            module = stack[-1][0]
            at_item_level = depth == stack[-1][1]
            if tok == "#" and i + 1 < len(tokens) and tokens[i + 1][0] == "[":
                # `#[path = "x.rs"]` is blanked with the other strings; remember only that it was there.
                if i + 2 < len(tokens) and tokens[i + 2][0] == "path":
                    pending_path_attr = True
                i += 2
                continue
            if tok == "{":
                depth += 1
            elif tok == "}":
                depth -= 1
                if len(stack) > 1 and depth < stack[-1][1]:
                    stack.pop()
            elif tok == "use" and (i == 0 or tokens[i - 1][0] != "::"):
                j = i + 1
                while j < len(tokens) and tokens[j][0] != ";":
                    j += 1
                for segments, alias in parse_use_tree(tokens[i + 1:j]):
                    if segments and segments[0] == "::":
                        continue
                    module.references.append((segments, line))
                    if alias == "*":
                        module.globs.append(segments)
                    elif alias != "_":
                        module.imports[alias] = segments
                i = j + 1
                continue
            elif tok == "pub" and i + 2 < len(tokens) and tokens[i + 1][0] == "(" and tokens[i + 2][0] == "in":
                while i < len(tokens) and tokens[i][0] != ")":  # `pub(in crate::x)` names no dependency
                    i += 1
            elif tok == "macro_rules" and at_item_level and i + 2 < len(tokens) and tokens[i + 1][0] == "!":
                module.items.add(tokens[i + 2][0])
            elif tok in ITEM_KEYWORDS and at_item_level and i + 1 < len(tokens):
                name = tokens[i + 1][0]
                if re.match(r"[A-Za-z_]\w*$", name) and name not in KEYWORDS:
                    module.items.add(name)
                    if tok == "mod":
                        child = module.path + (name,)
                        module.children[name] = child
                        after = tokens[i + 2][0] if i + 2 < len(tokens) else ";"
                        if after == "{":
                            inline = Module(child, module.file, module.source)
                            self.modules[child] = inline
                            depth += 1
                            stack.append((inline, depth))
                            i += 3
                            continue
                        if after == ";" and not pending_path_attr:
                            sub_dir = os.path.join(directory, *module.path[len(module.file):])
                            self._load_child(child, sub_dir, name)
                        pending_path_attr = None
            elif re.match(r"[A-Za-z_]\w*$", tok) and (i == 0 or tokens[i - 1][0] not in ("::", ".")) \
                    and i + 2 < len(tokens) and tokens[i + 1][0] == "::" and tok not in ("Self",):
                segments = [tok]
                j = i + 1
                while j + 1 < len(tokens) and tokens[j][0] == "::" and re.match(r"[A-Za-z_]\w*$", tokens[j + 1][0]):
                    segments.append(tokens[j + 1][0])
                    j += 2
                if i > 0 and tokens[i - 1][0] == "$" and tok == "crate":
                    segments[0] = "crate"
                module.references.append((segments, line))
                i = j
                continue
            i += 1

    def _load_child(self, path, directory, name):
        for candidate, mod_rs in ((os.path.join(directory, name + ".rs"), False),
                                  (os.path.join(directory, name, "mod.rs"), True)):
            if os.path.isfile(candidate):
                self._load_file(path, candidate, mod_rs)
                return

    # ---- resolution -------------------------------------------------------------------------

    def absolute(self, module, segments):
        """The crate-absolute path a path written in `module` names, or None when it leaves the crate."""
        head, rest = segments[0], list(segments[1:])
        if head == "crate":
            return rest
        if head == "self":
            return list(module.path) + rest
        if head == "super":
            base = list(module.path)
            while True:
                base = base[:-1]
                if rest and rest[0] == "super":
                    rest = rest[1:]
                    continue
                return base + rest
        scope = module
        while scope is not None:
            if head in scope.children:
                return list(scope.children[head]) + rest
            if head in scope.imports:
                target = self.absolute(scope, scope.imports[head])
                return None if target is None else target + rest
            # A `use` in a file is visible in its inline modules through their `use super::*`.
            scope = self.modules.get(scope.path[:-1]) if scope.path != scope.file else None
        return None

    def defining_module(self, absolute, hops=0):
        """The module an absolute path leads into, following imports to where a name is defined."""
        k = len(absolute)
        while k > 0 and tuple(absolute[:k]) not in self.modules:
            k -= 1
        module = self.modules.get(tuple(absolute[:k]))
        if module is None:
            return None
        if k < len(absolute) and hops < 16:
            name = absolute[k]
            if name not in module.items:
                if name in module.imports:
                    target = self.absolute(module, module.imports[name])
                    if target is not None:
                        return self.defining_module(target + absolute[k + 1:], hops + 1) or module
                for glob in module.globs:
                    target = self.absolute(module, glob)
                    if target is None:
                        continue
                    found = self.defining_module(target + absolute[k:], hops + 1)
                    if found is not None and absolute[k] in self.modules[found].items:
                        return found
        return module.path

    def edges(self):
        """{(from file module, to file module): (file, line)} for every dependency found."""
        found = {}
        for module in self.modules.values():
            for segments, line in module.references:
                absolute = self.absolute(module, segments)
                if absolute is None:
                    continue
                target = self.defining_module(absolute)
                if target is None:
                    continue
                source, target = module.file, self.modules[target].file
                if source != target and (source, target) not in found:
                    found[(source, target)] = (module.source, line)
        return found


def is_ancestor(a, b):
    return len(a) < len(b) and b[:len(a)] == a


def strongly_connected(nodes, edges):
    """Tarjan's algorithm; returns the components with more than one module."""
    index, low, on_stack, stack, result = {}, {}, set(), [], []
    counter = [0]
    successors = defaultdict(list)
    for a, b in edges:
        successors[a].append(b)

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(successors[v]):
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
                result.append(sorted(component))

    sys.setrecursionlimit(10000)
    for v in sorted(nodes):
        if v not in index:
            visit(v)
    return sorted(result)


def name(path):
    return "::".join(path) if path else "crate"


def check(src_dir, repo):
    """The cycles of each crate rooted in `src_dir`: (root file, parent, members, dependencies)."""
    roots = [f for f in ("lib.rs", "main.rs") if os.path.isfile(os.path.join(src_dir, f))]
    bins = os.path.join(src_dir, "bin")
    if os.path.isdir(bins):
        roots += [os.path.join("bin", f) for f in sorted(os.listdir(bins)) if f.endswith(".rs")]
    cycles = []
    for root in roots:
        crate = Crate(src_dir)
        crate.load(os.path.join(src_dir, root))
        # Each dependency is seen where its two modules part: between the children of their
        # deepest common ancestor, each child standing for itself and everything below it.
        levels = defaultdict(lambda: defaultdict(list))
        for (a, b), where in sorted(crate.edges().items()):
            if is_ancestor(a, b) or is_ancestor(b, a):
                continue
            k = 0
            while a[k] == b[k]:
                k += 1
            levels[a[:k]][(a[:k + 1], b[:k + 1])].append((a, b, where))
        for parent, edges in sorted(levels.items()):
            nodes = {node for pair in edges for node in pair}
            for component in strongly_connected(nodes, edges):
                members = set(component)
                inside = [dependency for (x, y), found in sorted(edges.items())
                          if x in members and y in members for dependency in found]
                cycles.append((os.path.relpath(os.path.join(src_dir, root), repo), parent,
                               component, inside))
    return cycles


def main(argv):
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    src_dirs = argv[1:] or sorted(
        os.path.join(repo, "crates", c, "src") for c in os.listdir(os.path.join(repo, "crates"))
        if os.path.isdir(os.path.join(repo, "crates", c, "src")))
    total = 0
    for src_dir in src_dirs:
        for root, parent, component, inside in check(src_dir, repo):
            total += 1
            within = f" (inside {name(parent)})" if parent else ""
            print(f"cycle in {root}{within}: {' <-> '.join(name(p) for p in component)}")
            for a, b, (file, line) in inside:
                print(f"    {name(a)} -> {name(b)}    ({os.path.relpath(file, repo)}:{line})")
    if total:
        print(f"module_cycles: {total} cycle(s); move what both sides share into a module both import")
        return 1
    print(f"module_cycles: no cycles between modules in {len(src_dirs)} crate(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
