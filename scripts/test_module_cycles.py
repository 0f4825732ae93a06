#!/usr/bin/env python3
"""Tests of scripts/module_cycles.py on small crates written to a temporary folder."""

import os
import subprocess
import sys
import tempfile
import textwrap
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import module_cycles  # noqa: E402


def write_crate(root, files):
    for name, text in files.items():
        path = os.path.join(root, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            f.write(textwrap.dedent(text))


def edges_of(files):
    with tempfile.TemporaryDirectory() as root:
        write_crate(root, files)
        crate = module_cycles.Crate(root)
        crate.load(os.path.join(root, "lib.rs"))
        return {(module_cycles.name(a), module_cycles.name(b)) for a, b in crate.edges()}


def cycles_of(files):
    with tempfile.TemporaryDirectory() as root:
        write_crate(root, files)
        return [(module_cycles.name(parent), [module_cycles.name(m) for m in members])
                for _, parent, members, _ in module_cycles.check(root, root)]


class Dependencies(unittest.TestCase):
    def test_grouped_imports_name_each_module(self):
        edges = edges_of({
            "lib.rs": "mod a; mod b; mod c;",
            "a.rs": "use crate::{c, b::{d, e::Thing}};\nuse crate::c::{self as see};",
            "b/mod.rs": "pub mod d; pub mod e;",
            "b/d.rs": "", "b/e.rs": "pub struct Thing;", "c.rs": "",
        })
        self.assertEqual(edges, {("a", "c"), ("a", "b::d"), ("a", "b::e")})

    def test_inline_paths_count(self):
        edges = edges_of({
            "lib.rs": "mod a; mod b;",
            "a.rs": "fn f() { crate::b::go(); let x: Vec<crate::b::T> = vec![]; }",
            "b.rs": "pub fn go() {} pub struct T;",
        })
        self.assertEqual(edges, {("a", "b")})

    def test_super_in_files_and_inline_modules(self):
        edges = edges_of({
            "lib.rs": "mod a;",
            "a/mod.rs": "mod x; mod y;",
            "a/x.rs": "fn f() { super::y::go() }\nmod tests { use super::super::y; fn t() { y::go() } }",
            "a/y.rs": "pub fn go() {}",
        })
        self.assertEqual(edges, {("a::x", "a::y")})

    def test_an_imported_module_resolves_what_follows_it(self):
        edges = edges_of({
            "lib.rs": "mod a; mod b;",
            "a.rs": "use crate::b;\nfn f() { b::inner::go() }",
            "b/mod.rs": "pub mod inner;",
            "b/inner.rs": "pub fn go() {}",
        })
        self.assertEqual(edges, {("a", "b"), ("a", "b::inner")})

    def test_a_reexport_leads_to_the_defining_module(self):
        edges = edges_of({
            "lib.rs": "mod a; mod b;",
            "a.rs": "use crate::b::Thing;",
            "b/mod.rs": "mod inner;\npub use inner::Thing;",
            "b/inner.rs": "pub struct Thing;",
        })
        self.assertIn(("a", "b::inner"), edges)
        self.assertNotIn(("a", "b"), edges)

    def test_comments_and_strings_are_not_code(self):
        edges = edges_of({
            "lib.rs": "mod a; mod b;",
            "a.rs": textwrap.dedent('''\
                //! See [`crate::b::Thing`].
                /* crate::b::go() /* nested */ crate::b::go() */
                const S: &str = "crate::b::go()";
                const R: &str = r#"use crate::b;"#;
                const C: char = '"';
                fn f<'a>(x: &'a str) -> &'a str { x }
                '''),
            "b.rs": "pub fn go() {}",
        })
        self.assertEqual(edges, set())

    def test_external_crates_and_std_are_left_out(self):
        edges = edges_of({
            "lib.rs": "mod a; mod b;",
            "a.rs": "use std::io;\nuse tokio::sync::Notify;\nfn f() { b::go(); tracing::info!(\"x\"); }",
            "b.rs": "pub fn go() {}",
        })
        self.assertEqual(edges, set())


class Cycles(unittest.TestCase):
    def test_siblings_that_use_each_other(self):
        self.assertEqual(cycles_of({
            "lib.rs": "mod a; mod b;",
            "a.rs": "use crate::b::B;\npub struct A;",
            "b.rs": "pub struct B(crate::a::A);",
        }), [("crate", ["a", "b"])])

    def test_a_parent_and_its_children_may_use_each_other(self):
        self.assertEqual(cycles_of({
            "lib.rs": "mod conn;",
            "conn.rs": "mod app;\nuse app::App;\npub const LIMIT: usize = 1;",
            "conn/app.rs": "pub struct App;\nfn f() -> usize { super::LIMIT }",
        }), [])

    def test_a_module_and_another_module_s_child(self):
        # static_files uses http::response; http::router uses static_files: the two subtrees
        # depend on each other although no two files do.
        self.assertEqual(cycles_of({
            "lib.rs": "mod http; mod static_files;",
            "http/mod.rs": "pub mod response; pub mod router;",
            "http/response.rs": "pub struct Response;",
            "http/router.rs": "use crate::static_files::StaticFiles;",
            "static_files/mod.rs": "use crate::http::response::Response;\npub struct StaticFiles;",
        }), [("crate", ["http", "static_files"])])

    def test_cycles_deeper_down_are_named_with_their_parent(self):
        self.assertEqual(cycles_of({
            "lib.rs": "mod wsgi;",
            "wsgi/mod.rs": "mod call; mod input;",
            "wsgi/call.rs": "use super::input::Input;\npub struct Shared;",
            "wsgi/input.rs": "use super::call::Shared;\npub struct Input;",
        }), [("wsgi", ["wsgi::call", "wsgi::input"])])

    def test_a_layered_crate_has_none(self):
        self.assertEqual(cycles_of({
            "lib.rs": "mod message; mod http; mod static_files;",
            "message.rs": "pub struct Response;",
            "http/mod.rs": "mod router;",
            "http/router.rs": "use crate::{message::Response, static_files::StaticFiles};",
            "static_files/mod.rs": "use crate::message::Response;\npub struct StaticFiles;",
        }), [])

    def test_a_module_declared_but_missing_is_skipped(self):
        self.assertEqual(cycles_of({"lib.rs": "mod gone;\nmod here;", "here.rs": ""}), [])

    def test_the_command_exits_non_zero_naming_the_cycle(self):
        with tempfile.TemporaryDirectory() as root:
            write_crate(root, {
                "src/lib.rs": "mod a; mod b;",
                "src/a.rs": "use crate::b::B;\npub struct A;",
                "src/b.rs": "use crate::a::A;\npub struct B;",
            })
            script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "module_cycles.py")
            run = subprocess.run([sys.executable, script, os.path.join(root, "src")],
                                 capture_output=True, text=True, check=False)
        self.assertEqual(run.returncode, 1)
        self.assertIn("a <-> b", run.stdout)
        self.assertIn("a -> b", run.stdout)
        self.assertIn("b -> a", run.stdout)


if __name__ == "__main__":
    unittest.main()
