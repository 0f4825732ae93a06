//! The static file server end to end: how request paths map to files, that nothing outside the
//! document root is ever served, Content-Type, files over 4 GiB (whole, ranged, and ten downloads
//! at once in flat memory), ranges, conditional requests and precompressed siblings.

use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use crate::support::{
    connect, exchange, get, get_with, raw_until_close, read_response, status_of, Response, Server,
    Site, PATIENCE,
};

/// What `secret.txt` just outside the root contains; no response may ever include it.
const SECRET: &str = "TOP-SECRET-f3a9c2-outside-the-docroot";

fn serve(site: &Site) -> Server {
    Server::start(&["serve", "-r", &site.root_str()])
}

fn serve_listing(site: &Site) -> Server {
    Server::start(&["serve", "-r", &site.root_str(), "--list-dirs"])
}

/// A site with `secret.txt` (and `outside/secret.txt`) beside the root, and some files inside it.
fn site_with_secret() -> Site {
    let site = Site::new();
    std::fs::write(site.dir.path().join("secret.txt"), SECRET).unwrap();
    std::fs::create_dir(site.dir.path().join("outside")).unwrap();
    std::fs::write(site.dir.path().join("outside/secret.txt"), SECRET).unwrap();
    site.file("index.html", b"inside index");
    site.file("sub/page.html", b"inside sub page");
    site
}

/// Sends `request` raw (no client library normalising the target) and checks that it is refused
/// with 403 or 404 and that the secret appears nowhere in what comes back.
fn assert_refused(addr: SocketAddr, request: &str) {
    let raw = raw_until_close(addr, request.as_bytes());
    let text = String::from_utf8_lossy(&raw);
    assert!(
        !text.contains(SECRET),
        "{request:?} leaked the secret:\n{text}"
    );
    assert!(
        !text.contains("root:x:0:0"),
        "{request:?} leaked /etc/passwd:\n{text}"
    );
    let status = status_of(&raw);
    assert!(
        status == 403 || status == 404,
        "{request:?} got {status}, wanted 403 or 404:\n{text}"
    );
}

fn raw_get(target: &str) -> String {
    format!("GET {target} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
}

fn symlink(target: impl AsRef<Path>, link: impl AsRef<Path>) {
    std::os::unix::fs::symlink(target, link).unwrap();
}

/// The `href` values of a listing page, HTML-unescaped: the URLs a browser would request.
fn listing_links(page: &str) -> Vec<String> {
    page.split("href=\"")
        .skip(1)
        .map(|rest| {
            let raw = &rest[..rest.find('"').expect("closing quote")];
            raw.replace("&quot;", "\"")
                .replace("&#39;", "'")
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&amp;", "&")
        })
        .collect()
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(byte) =
                u8::from_str_radix(std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or(""), 16)
            {
                out.push(byte);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).expect("links decode to UTF-8")
}

// ---------------------------------------------------------------------------------------------
// 4. Path mapping
// ---------------------------------------------------------------------------------------------

#[test]
fn percent_encoded_paths_are_decoded_before_mapping() {
    let site = Site::new();
    site.file("a b.txt", b"space file");
    site.file("a.html", b"dot file");
    site.file("page.html", b"the page");
    site.file("dir one/inner.txt", b"in a spaced folder");
    let server = serve(&site);
    for (target, body) in [
        ("/a%20b.txt", "space file"),
        ("/a%2ehtml", "dot file"),
        ("/a%2Ehtml", "dot file"),
        ("/%70%61%67%65.html", "the page"),
        ("/%70%61%67%65%2E%68%74%6D%6C", "the page"),
        ("/dir%20one/inner.txt", "in a spaced folder"),
        ("/dir%20one%2finner.txt", "in a spaced folder"),
    ] {
        let response = get(server.addr, target);
        assert_eq!(response.status, 200, "{target}");
        assert_eq!(response.text(), body, "{target}");
    }
}

#[test]
fn query_string_and_fragment_are_ignored() {
    let site = Site::new();
    site.file("page.html", b"the page");
    site.file("dir/index.html", b"dir index");
    let server = serve(&site);
    for target in [
        "/page.html?x=1",
        "/page.html?a=b&c=%2e%2e/secret",
        "/page.html#frag",
        "/page.html?q#frag",
        "/page.html?",
    ] {
        let response = get(server.addr, target);
        assert_eq!(response.status, 200, "{target}");
        assert_eq!(response.text(), "the page", "{target}");
        assert_eq!(
            response.header("content-type"),
            Some("text/html; charset=utf-8"),
            "{target}"
        );
    }
    let response = get(server.addr, "/dir/?v=2#top");
    assert_eq!(
        (response.status, response.text().as_str()),
        (200, "dir index")
    );
}

#[test]
fn directory_url_with_slash_serves_its_index_html() {
    let site = Site::new();
    site.file("index.html", b"root index");
    site.file("dir/index.html", b"dir index");
    site.file("dir/deeper/index.html", b"deeper index");
    let server = serve(&site);
    for (target, body) in [
        ("/", "root index"),
        ("/dir/", "dir index"),
        ("/dir/deeper/", "deeper index"),
    ] {
        let response = get(server.addr, target);
        assert_eq!(response.status, 200, "{target}");
        assert_eq!(response.text(), body, "{target}");
        assert_eq!(
            response.header("content-type"),
            Some("text/html; charset=utf-8"),
            "{target}"
        );
        assert!(response.header("etag").is_some(), "{target}");
    }
}

#[test]
fn directory_without_index_is_404_and_not_listed_by_default() {
    let site = Site::new();
    site.file("empty-ish/some-file-name.txt", b"x");
    let server = serve(&site);
    for target in ["/empty-ish/", "/"] {
        let response = get(server.addr, target);
        assert_eq!(response.status, 404, "{target}");
        assert!(
            !response.text().contains("some-file-name"),
            "{target} listed the folder: {}",
            response.text()
        );
        assert!(
            !response.text().contains("empty-ish"),
            "{target} listed the root: {}",
            response.text()
        );
    }
}

#[test]
fn list_dirs_gives_an_html_listing_with_escaped_names() {
    let site = Site::new();
    let names = [
        "plain.txt",
        "<b>bold<b>.txt",
        "a&amp;b.txt",
        "quote\"s'.txt",
        "café.txt",
        "with space.txt",
        "100%.txt",
        "javascript:alert(1)",
    ];
    for name in names {
        site.file(&format!("d/{name}"), b"x");
    }
    std::fs::create_dir(site.root().join("d/child")).unwrap();
    let server = serve_listing(&site);

    let response = get(server.addr, "/d/");
    assert_eq!(response.status, 200);
    assert!(
        response
            .header("content-type")
            .unwrap()
            .starts_with("text/html"),
        "{:?}",
        response.header("content-type")
    );
    let page = response.text();
    assert!(page.contains("plain.txt"), "{page}");
    assert!(
        page.contains("&lt;b&gt;bold&lt;b&gt;.txt"),
        "name not escaped:\n{page}"
    );
    assert!(
        !page.contains("<b>"),
        "raw markup from a file name:\n{page}"
    );
    assert!(page.contains("a&amp;amp;b.txt"), "'&' not escaped:\n{page}");
    assert!(page.contains("café.txt"), "{page}");
    // Every link, as a browser reads it, names exactly one entry...
    let links = listing_links(&page);
    // Every entry's link is relative ("./name"), so a name like "javascript:..." stays a file name.
    for link in links.iter().filter(|l| l.as_str() != "../") {
        assert!(link.starts_with("./"), "link {link:?} is not relative");
    }
    let decoded: Vec<String> = links
        .iter()
        .map(|l| percent_decode(l.trim_start_matches("./")))
        .collect();
    for name in names {
        assert!(
            decoded.iter().any(|l| l == name),
            "no link to {name:?}; links: {links:?}\n{page}"
        );
    }
    assert!(
        decoded.iter().any(|l| l == "child/"),
        "no link to the sub folder; links: {links:?}"
    );
    // ... and following each file's link gets that file.
    for link in links.iter().filter(|l| !l.ends_with('/')) {
        let response = get(server.addr, &format!("/d/{link}"));
        assert_eq!(response.status, 200, "link {link:?}");
        assert_eq!(response.body, b"x", "link {link:?}");
    }

    // An index.html still wins over the listing.
    site.file("d/child/index.html", b"child index");
    assert_eq!(get(server.addr, "/d/child/").text(), "child index");
}

#[test]
fn listing_title_escapes_the_requested_path() {
    let site = Site::new();
    let evil = "<img src=x onerror=alert(1)>";
    site.file(&format!("{evil}/f.txt"), b"x");
    let server = serve_listing(&site);
    let response = get(server.addr, "/%3Cimg%20src=x%20onerror=alert(1)%3E/");
    assert_eq!(response.status, 200);
    assert!(!response.text().contains("<img"), "{}", response.text());
    assert!(
        response
            .text()
            .contains("&lt;img src=x onerror=alert(1)&gt;"),
        "{}",
        response.text()
    );
}

#[test]
fn file_path_with_trailing_slash_is_404() {
    let site = Site::new();
    site.file("file.html", b"a file");
    site.file("dir/inner.txt", b"inner");
    let server = serve(&site);
    for target in ["/file.html/", "/dir/inner.txt/", "/file.html%2f"] {
        let response = get(server.addr, target);
        assert_eq!(response.status, 404, "{target}");
        assert!(
            !response.text().contains("a file") && !response.text().contains("inner"),
            "{target}"
        );
    }
    assert_eq!(get(server.addr, "/file.html").status, 200);
}

#[test]
fn directory_without_slash_redirects_to_the_slash_url_keeping_the_query() {
    let site = Site::new();
    site.file("dir/index.html", b"dir index");
    site.file("a/b/index.html", b"b index");
    site.file("my dir/index.html", b"spaced");
    let server = serve(&site);
    for (target, location) in [
        ("/dir", "/dir/"),
        ("/dir?x=1", "/dir/?x=1"),
        ("/dir?x=1&y=two", "/dir/?x=1&y=two"),
        ("/a/b", "/a/b/"),
        ("/my%20dir", "/my%20dir/"),
    ] {
        let response = get(server.addr, target);
        assert_eq!(response.status, 301, "{target}");
        assert_eq!(response.header("location"), Some(location), "{target}");
    }
    // Following the redirect gets the index.
    assert_eq!(get(server.addr, "/dir/?x=1").text(), "dir index");
    // HEAD gets the same redirect.
    let head = exchange(
        server.addr,
        b"HEAD /dir?x=1 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(
        (head.status, head.header("location")),
        (301, Some("/dir/?x=1"))
    );
}

#[test]
fn directory_redirect_for_a_double_slash_path_stays_on_this_host() {
    // "//host" in a Location is a protocol-relative URL: a redirect there would send the browser to
    // another site (an open redirect).
    let site = Site::new();
    site.file("evil.example/index.html", b"x");
    let server = serve(&site);
    for target in ["//evil.example", "///evil.example", "//evil.example?x=1"] {
        let response = get(server.addr, target);
        assert_eq!(response.status, 301, "{target}");
        let location = response.header("location").unwrap();
        assert!(
            location.starts_with('/') && !location.starts_with("//"),
            "{target} redirected to {location:?}"
        );
        assert!(
            location.starts_with("/evil.example/"),
            "{target} redirected to {location:?}"
        );
    }
    assert_eq!(
        get(server.addr, "//evil.example?x=1").header("location"),
        Some("/evil.example/?x=1")
    );
}

#[test]
fn names_with_spaces_dots_and_utf8_are_served() {
    let site = Site::new();
    site.file("with space.txt", b"spaced");
    site.file("text..txt", b"two dots");
    site.file("many.dots.in.name.txt", b"many dots");
    site.file("café.txt", "accented é".as_bytes());
    site.file("日本/ファイル.txt", "japanese".as_bytes());
    let server = serve(&site);
    for (target, body) in [
        ("/with%20space.txt", "spaced"),
        ("/text..txt", "two dots"),
        ("/many.dots.in.name.txt", "many dots"),
        ("/caf%C3%A9.txt", "accented é"),
        ("/caf%c3%a9.txt", "accented é"),
        (
            "/%E6%97%A5%E6%9C%AC/%E3%83%95%E3%82%A1%E3%82%A4%E3%83%AB.txt",
            "japanese",
        ),
    ] {
        let response = get(server.addr, target);
        assert_eq!(response.status, 200, "{target}");
        assert_eq!(response.text(), body, "{target}");
        assert_eq!(
            response.header("content-type"),
            Some("text/plain; charset=utf-8"),
            "{target}"
        );
    }
    // café encoded as Latin-1 is a different (missing) name.
    assert_eq!(get(server.addr, "/caf%E9.txt").status, 404);
}

// ---------------------------------------------------------------------------------------------
// 5. Nothing outside the document root
// ---------------------------------------------------------------------------------------------

#[test]
fn dot_dot_segments_never_reach_outside_the_root() {
    let site = site_with_secret();
    let server = serve(&site);
    for target in [
        "/../secret.txt",
        "/../../../../../../secret.txt",
        "/sub/../../secret.txt",
        "/sub/../index.html/../../secret.txt",
        "/%2e%2e/secret.txt",
        "/%2E%2E/secret.txt",
        "/.%2e/secret.txt",
        "/%2e./secret.txt",
        "/sub/%2e%2e/%2e%2e/secret.txt",
        "/..%2fsecret.txt",
        "/..%2Fsecret.txt",
        "/%2e%2e%2fsecret.txt",
        "/%2e%2e%2f%2e%2e%2foutside%2fsecret.txt",
        "/sub%2f..%2f..%2fsecret.txt",
        "/../outside/secret.txt",
        "/%252e%252e/secret.txt",
        "/..",
        "/../",
    ] {
        assert_refused(server.addr, &raw_get(target));
    }
    // The files inside are still served.
    assert_eq!(get(server.addr, "/sub/page.html").text(), "inside sub page");
}

#[test]
fn backslashes_never_reach_outside_the_root() {
    let site = site_with_secret();
    let server = serve(&site);
    for target in [
        "/..\\secret.txt",
        "/sub\\..\\..\\secret.txt",
        "/..%5csecret.txt",
        "/..%5Csecret.txt",
        "/%5c..%5csecret.txt",
        "/%2e%2e%5csecret.txt",
        "/sub%5c..%5c..%5csecret.txt",
    ] {
        assert_refused(server.addr, &raw_get(target));
    }
}

#[test]
fn nul_bytes_in_the_path_are_refused_as_malformed() {
    let site = site_with_secret();
    site.file("page.html", b"page");
    let server = serve(&site);
    for target in [
        "/page.html%00",
        "/page.html%00.txt",
        "/%00",
        "/sub/%00/page.html",
        "/..%00/secret.txt",
        "/%00../secret.txt",
    ] {
        // Refused by the request parser (400), as for an application's PATH_INFO.
        let raw = raw_until_close(server.addr, raw_get(target).as_bytes());
        let text = String::from_utf8_lossy(&raw);
        assert!(
            !text.contains(SECRET),
            "{target:?} leaked the secret:\n{text}"
        );
        assert_eq!(status_of(&raw), 400, "{target:?}:\n{text}");
    }
}

#[test]
fn absolute_looking_paths_stay_inside_the_root() {
    let site = site_with_secret();
    let server = serve(&site);
    let secret_path = site.dir.path().join("secret.txt");
    let secret_path = secret_path.to_str().unwrap();
    let encoded_secret_path = secret_path.replace('/', "%2F");
    for target in [
        "//etc/passwd".to_string(),
        "///etc/passwd".to_string(),
        "/%2Fetc/passwd".to_string(),
        "/%2fetc%2fpasswd".to_string(),
        format!("/{secret_path}"),
        format!("/{encoded_secret_path}"),
        format!("/%2F{}", &secret_path[1..]),
    ] {
        assert_refused(server.addr, &raw_get(&target));
    }
}

#[test]
fn absolute_form_targets_never_reach_outside_the_root() {
    let site = site_with_secret();
    let server = serve(&site);
    for target in [
        "http://x/../secret.txt",
        "http://x/%2e%2e/secret.txt",
        "http://x/..%2fsecret.txt",
        "HTTP://x/../secret.txt",
        "http://x//etc/passwd",
        "http://x/%2Fetc/passwd",
        "http://x/sub/../../secret.txt",
        "https://x/../secret.txt",
    ] {
        assert_refused(server.addr, &raw_get(target));
    }
    // An absolute-form target for a file inside is served.
    let response = exchange(server.addr, raw_get("http://x/sub/page.html").as_bytes());
    assert_eq!(
        (response.status, response.text().as_str()),
        (200, "inside sub page")
    );
}

#[test]
fn symlinks_pointing_outside_the_root_are_refused() {
    let site = site_with_secret();
    let root = site.root();
    let outside = site.dir.path();
    // To the outside file, relative and absolute.
    symlink("../secret.txt", root.join("rel-link.txt"));
    symlink(outside.join("secret.txt"), root.join("abs-link.txt"));
    symlink("../../secret.txt", root.join("sub/deep-link.txt"));
    // To the outside directory, relative and absolute.
    symlink("../outside", root.join("rel-dir"));
    symlink(outside.join("outside"), root.join("abs-dir"));
    // To the folder holding the root (and so the secret).
    symlink("..", root.join("parent"));
    // As an index file, and as a precompressed sibling.
    std::fs::create_dir(root.join("indexed")).unwrap();
    symlink("../../secret.txt", root.join("indexed/index.html"));
    site.file("style.css", b"body{}");
    symlink("../secret.txt", root.join("style.css.gz"));
    symlink("../secret.txt", root.join("style.css.br"));
    // A loop.
    symlink("loop-b", root.join("loop-a"));
    symlink("loop-a", root.join("loop-b"));

    for server in [serve(&site), serve_listing(&site)] {
        for target in [
            "/rel-link.txt",
            "/abs-link.txt",
            "/sub/deep-link.txt",
            "/rel-dir/secret.txt",
            "/abs-dir/secret.txt",
            "/rel-dir/",
            "/abs-dir/",
            "/rel-dir",
            "/abs-dir",
            "/parent/secret.txt",
            "/parent/outside/secret.txt",
            "/parent/",
            "/indexed/",
            "/loop-a",
            "/loop-a/",
        ] {
            assert_refused(server.addr, &raw_get(target));
        }
        // The siblings are not used: the plain file is sent instead.
        for accept in ["Accept-Encoding: gzip\r\n", "Accept-Encoding: br, gzip\r\n"] {
            let response = get_with(server.addr, "/style.css", accept);
            assert!(!response.text().contains(SECRET), "{accept}");
            assert_eq!(response.status, 200, "{accept}");
            assert_eq!(response.body, b"body{}", "{accept}");
            assert_eq!(response.header("content-encoding"), None, "{accept}");
        }
    }
}

/// Documents what the server does with symlinks that stay inside the root: a relative one is
/// followed and served like its target. An absolute one is refused even when its target is inside
/// the root, because openat2(RESOLVE_BENEATH) refuses every absolute symlink (the fallback for
/// kernels without openat2 would serve it); either way it can never leak anything.
#[test]
fn symlinks_inside_the_root_to_files_inside_it_are_followed_when_relative() {
    let site = Site::new();
    site.file("real/target.txt", b"target content");
    let root = site.root();
    symlink("real/target.txt", root.join("rel-link.txt"));
    std::fs::create_dir(root.join("sub")).unwrap();
    symlink("../real/target.txt", root.join("sub/up-link.txt"));
    symlink("real", root.join("dir-link"));
    symlink(root.join("real/target.txt"), root.join("abs-link.txt"));
    let server = serve(&site);

    for target in ["/rel-link.txt", "/sub/up-link.txt", "/dir-link/target.txt"] {
        let response = get(server.addr, target);
        assert_eq!(response.status, 200, "{target}");
        assert_eq!(response.text(), "target content", "{target}");
        assert_eq!(
            response.header("content-type"),
            Some("text/plain; charset=utf-8"),
            "{target}"
        );
    }
    let response = get(server.addr, "/abs-link.txt");
    match response.status {
        403 => {}
        200 => assert_eq!(response.text(), "target content"),
        other => panic!("absolute in-root symlink got {other}"),
    }
}

// ---------------------------------------------------------------------------------------------
// 6. Content-Type
// ---------------------------------------------------------------------------------------------

#[test]
fn content_type_follows_the_extension() {
    let site = Site::new();
    let cases: &[(&str, &[&str])] = &[
        ("a.html", &["text/html; charset=utf-8"]),
        ("a.htm", &["text/html; charset=utf-8"]),
        ("UPPER.HTML", &["text/html; charset=utf-8"]),
        ("a.css", &["text/css; charset=utf-8"]),
        (
            "a.js",
            &[
                "application/javascript; charset=utf-8",
                "text/javascript; charset=utf-8",
            ],
        ),
        ("a.jpg", &["image/jpeg"]),
        ("a.jpeg", &["image/jpeg"]),
        ("a.png", &["image/png"]),
        ("a.gif", &["image/gif"]),
        ("a.swf", &["application/x-shockwave-flash"]),
        ("a.txt", &["text/plain; charset=utf-8"]),
        ("a.svg", &["image/svg+xml"]),
        ("a.json", &["application/json"]),
        ("a.wasm", &["application/wasm"]),
        ("a.woff2", &["font/woff2"]),
        ("a.ico", &["image/x-icon", "image/vnd.microsoft.icon"]),
        ("a.mp4", &["video/mp4"]),
        ("a.pdf", &["application/pdf"]),
        ("a.unknownextension", &["application/octet-stream"]),
        ("noextension", &["application/octet-stream"]),
        ("archive.tar.unknownext", &["application/octet-stream"]),
    ];
    for (name, _) in cases {
        site.file(name, b"content");
    }
    let server = serve(&site);
    for (name, allowed) in cases {
        let response = get(server.addr, &format!("/{name}"));
        assert_eq!(response.status, 200, "{name}");
        let content_type = response.header("content-type").unwrap_or("<none>");
        assert!(
            allowed.contains(&content_type),
            "{name}: Content-Type {content_type:?}, wanted one of {allowed:?}"
        );
    }
}

/// Textual files, and files whose type never takes a charset, for the `--charset` tests.
fn mixed_site() -> Site {
    let site = Site::new();
    for name in [
        "style.css",
        "page.html",
        "notes.txt",
        "app.js",
        "feed.rss",
        "data.json",
        "logo.svg",
        "photo.png",
        "font.woff2",
        "archive.zip",
        "blob.bin",
        "noextension",
    ] {
        site.file(name, b"content");
    }
    site
}

/// What [`mixed_site`]'s files are sent as with `--charset CHARSET` (None: bare types).
fn expected_types(charset: Option<&str>) -> Vec<(&'static str, String)> {
    let textual = |media_type: &str| match charset {
        Some(charset) => format!("{media_type}; charset={charset}"),
        None => media_type.to_string(),
    };
    vec![
        ("/style.css", textual("text/css")),
        ("/page.html", textual("text/html")),
        ("/notes.txt", textual("text/plain")),
        ("/app.js", textual("text/javascript")),
        ("/feed.rss", textual("application/rss+xml")),
        ("/data.json", "application/json".into()),
        ("/logo.svg", "image/svg+xml".into()),
        ("/photo.png", "image/png".into()),
        ("/font.woff2", "font/woff2".into()),
        ("/archive.zip", "application/zip".into()),
        ("/blob.bin", "application/octet-stream".into()),
        ("/noextension", "application/octet-stream".into()),
    ]
}

/// Every answer for `target` a client can get: GET (twice: from the file, then from the file
/// cache), HEAD, 304 and a range.
fn content_types_of(server: &Server, target: &str) -> Vec<(String, Option<String>)> {
    let owned = |what: &str, response: &Response| {
        (
            format!("{what} {target} ({})", response.status),
            response.header("content-type").map(str::to_string),
        )
    };
    let first = get(server.addr, target);
    let etag = first.header("etag").unwrap_or("\"none\"").to_string();
    let mut seen = vec![owned("GET", &first)];
    seen.push(owned("cached GET", &get(server.addr, target)));
    let head = exchange(
        server.addr,
        format!("HEAD {target} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").as_bytes(),
    );
    seen.push(owned("HEAD", &head));
    let not_modified = get_with(server.addr, target, &format!("If-None-Match: {etag}\r\n"));
    assert_eq!(not_modified.status, 304, "{target}");
    seen.push(owned("conditional GET", &not_modified));
    let range = get_with(server.addr, target, "Range: bytes=0-2\r\n");
    assert_eq!(range.status, 206, "{target}");
    seen.push(owned("ranged GET", &range));
    seen
}

fn assert_types(server: &Server, charset: Option<&str>) {
    for (target, expected) in expected_types(charset) {
        for (what, content_type) in content_types_of(server, target) {
            assert_eq!(content_type.as_deref(), Some(expected.as_str()), "{what}");
        }
    }
}

#[test]
fn textual_files_say_utf_8_by_default_and_other_files_say_no_charset() {
    let site = mixed_site();
    let server = serve(&site);
    assert_eq!(
        get(server.addr, "/style.css").header("content-type"),
        Some("text/css; charset=utf-8")
    );
    assert_types(&server, Some("utf-8"));
}

#[test]
fn charset_off_or_empty_sends_bare_types() {
    let site = mixed_site();
    for off in ["off", "OFF", ""] {
        let server = Server::start(&["serve", "-r", &site.root_str(), "--charset", off]);
        assert_eq!(
            get(server.addr, "/style.css").header("content-type"),
            Some("text/css"),
            "--charset {off:?}"
        );
        assert_types(&server, None);
    }
}

#[test]
fn charset_names_another_encoding_as_given() {
    let site = mixed_site();
    let server = Server::start_with(
        &["serve", "-r", &site.root_str()],
        &[("TERN_CHARSET", "ISO-8859-1")],
    );
    assert_types(&server, Some("ISO-8859-1"));
}

#[test]
fn a_precompressed_sibling_keeps_the_charset() {
    let site = precompressed_site();
    let root = site.root_str();
    for (args, css, js) in [
        (
            &[][..],
            "text/css; charset=utf-8",
            "text/javascript; charset=utf-8",
        ),
        (&["--charset", "off"][..], "text/css", "text/javascript"),
    ] {
        let mut command = vec!["serve", "-r", root.as_str()];
        command.extend_from_slice(args);
        let server = Server::start(&command);
        for (accept, coding) in [
            ("br", Some("br")),
            ("gzip", Some("gzip")),
            ("identity", None),
        ] {
            let extra = format!("Accept-Encoding: {accept}\r\n");
            // Twice: the plain file's second answer comes from the file cache.
            for round in 0..2 {
                let response = get_with(server.addr, "/style.css", &extra);
                assert_eq!(response.status, 200, "{args:?} {accept} {round}");
                assert_eq!(response.header("content-encoding"), coding, "{accept}");
                assert_eq!(
                    response.header("content-type"),
                    Some(css),
                    "{args:?} {accept} {round}"
                );
            }
        }
        let response = get_with(server.addr, "/gz-only.js", "Accept-Encoding: gzip\r\n");
        assert_eq!(response.header("content-encoding"), Some("gzip"));
        assert_eq!(response.header("content-type"), Some(js), "{args:?}");
        let head = exchange(
            server.addr,
            b"HEAD /style.css HTTP/1.1\r\nHost: t\r\nAccept-Encoding: gzip\r\nConnection: close\r\n\r\n",
        );
        assert_eq!(head.header("content-encoding"), Some("gzip"));
        assert_eq!(head.header("content-type"), Some(css), "{args:?}");
    }
}

/// Error pages, redirects and listings are tern's own UTF-8 HTML, whatever `--charset` says
/// about the files it serves.
#[test]
fn tern_own_html_pages_say_utf_8_whatever_the_charset_flag() {
    let site = Site::new();
    site.file("dir/file.txt", b"x");
    site.file("dir/sub/file.txt", b"x");
    for charset in ["utf-8", "off", "iso-8859-1"] {
        let server = Server::start(&[
            "serve",
            "-r",
            &site.root_str(),
            "--list-dirs",
            "--charset",
            charset,
        ]);
        for (target, status) in [("/missing.txt", 404), ("/dir", 301), ("/dir/", 200)] {
            let response = get(server.addr, target);
            assert_eq!(response.status, status, "{charset} {target}");
            assert_eq!(
                response.header("content-type"),
                Some("text/html; charset=utf-8"),
                "{charset} {target}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 7. Files over 4 GiB
// ---------------------------------------------------------------------------------------------

const GIB: u64 = 1 << 30;
const BIG_SIZE: u64 = 4 * GIB + (1 << 20);

/// Distinctive bytes at known offsets of the big file; everything else is a hole (zeros).
const MARKERS: [(u64, &[u8]); 5] = [
    (0, b"FIRST-BYTES-OF-THE-BIG-FILE"),
    (GIB + 12_345, b"MARKER-AFTER-ONE-GIB"),
    (3 * GIB - 3, b"MARKER-ACROSS-3GiB"),
    (4 * GIB - 8, b"MARKER-SPANNING-THE-4GiB-BOUNDARY"),
    (BIG_SIZE - 16, b"LAST-16-BYTES-!!"),
];

/// A sparse file of [`BIG_SIZE`] bytes at `root/big.bin` with [`MARKERS`] written in it.
fn big_sparse_file(site: &Site) {
    let file = File::create(site.root().join("big.bin")).unwrap();
    file.set_len(BIG_SIZE).unwrap();
    for (offset, marker) in MARKERS {
        file.write_all_at(marker, offset).unwrap();
    }
    file.sync_all().unwrap();
    assert_eq!(file.metadata().unwrap().len(), BIG_SIZE);
}

/// What the big file holds at `offset..offset + out.len()`.
fn expected_big_bytes(offset: u64, out: &mut [u8], zeros: &[u8]) {
    out.copy_from_slice(&zeros[..out.len()]);
    let end = offset + out.len() as u64;
    for (at, marker) in MARKERS {
        let marker_end = at + marker.len() as u64;
        let (from, to) = (at.max(offset), marker_end.min(end));
        if from < to {
            out[(from - offset) as usize..(to - offset) as usize]
                .copy_from_slice(&marker[(from - at) as usize..(to - at) as usize]);
        }
    }
}

/// Sends `request` and reads only the response head; the body is left on the returned reader.
fn request_head(addr: SocketAddr, request: &str) -> (Response, BufReader<TcpStream>) {
    let mut stream = connect(addr);
    stream.write_all(request.as_bytes()).unwrap();
    let mut reader = BufReader::with_capacity(1 << 20, stream);
    let response = read_response(&mut reader, true).expect("a response head");
    (response, reader)
}

/// Reads the rest of the connection in 1 MiB pieces, calling `check(offset, piece)` for each and
/// keeping nothing; returns the byte count.
fn stream_body(reader: &mut impl Read, mut check: impl FnMut(u64, &[u8])) -> u64 {
    let mut buffer = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = reader.read(&mut buffer).expect("body read");
        if n == 0 {
            return total;
        }
        check(total, &buffer[..n]);
        total += n as u64;
    }
}

#[test]
fn file_over_4_gib_is_served_whole_with_every_byte_in_place() {
    let site = Site::new();
    big_sparse_file(&site);
    let server = serve(&site);

    let head = exchange(
        server.addr,
        b"HEAD /big.bin HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(head.status, 200);
    assert_eq!(
        head.header("content-length"),
        Some(BIG_SIZE.to_string().as_str())
    );

    let (response, mut reader) = request_head(server.addr, &raw_get("/big.bin"));
    assert_eq!(response.status, 200);
    assert_eq!(
        response.header("content-length"),
        Some(BIG_SIZE.to_string().as_str())
    );
    assert_eq!(
        response.header("content-type"),
        Some("application/octet-stream")
    );
    assert!(response.header("etag").is_some() && response.header("last-modified").is_some());

    let zeros = vec![0u8; 1 << 20];
    let mut expected = vec![0u8; 1 << 20];
    let mut markers_seen = 0;
    let received = stream_body(&mut reader, |offset, piece| {
        let want = &mut expected[..piece.len()];
        expected_big_bytes(offset, want, &zeros);
        if piece != want {
            let at = piece
                .iter()
                .zip(want.iter())
                .position(|(a, b)| a != b)
                .unwrap();
            panic!(
                "byte {} differs: got {} wanted {}",
                offset + at as u64,
                piece[at],
                want[at]
            );
        }
        let end = offset + piece.len() as u64;
        markers_seen += MARKERS
            .iter()
            .filter(|(at, m)| *at + m.len() as u64 > offset && *at + (m.len() as u64) <= end)
            .count();
    });
    assert_eq!(received, BIG_SIZE, "body length");
    assert_eq!(
        markers_seen,
        MARKERS.len(),
        "every marker's last byte was checked"
    );
}

/// A range of the big file, read whole (they are small) and checked byte for byte.
fn assert_big_range(addr: SocketAddr, range: &str, start: u64, end: u64) {
    let response = get_with(addr, "/big.bin", &format!("Range: {range}\r\n"));
    assert_eq!(response.status, 206, "{range}");
    assert_eq!(
        response.header("content-range"),
        Some(format!("bytes {start}-{end}/{BIG_SIZE}").as_str()),
        "{range}"
    );
    let len = end - start + 1;
    assert_eq!(
        response.header("content-length"),
        Some(len.to_string().as_str()),
        "{range}"
    );
    let zeros = vec![0u8; len as usize];
    let mut expected = vec![0u8; len as usize];
    expected_big_bytes(start, &mut expected, &zeros);
    assert!(response.body == expected, "{range}: body differs");
}

#[test]
fn ranges_near_the_end_and_across_4_gib_of_a_big_file_are_byte_exact() {
    let site = Site::new();
    big_sparse_file(&site);
    let server = serve(&site);
    let last = BIG_SIZE - 1;
    let boundary = 4 * GIB;
    assert_big_range(server.addr, "bytes=4294967290-", 4_294_967_290, last);
    assert_big_range(
        server.addr,
        &format!("bytes={}-{}", boundary - 8, boundary + 24),
        boundary - 8,
        boundary + 24,
    );
    assert_big_range(
        server.addr,
        &format!("bytes={}-{}", boundary - 1, boundary),
        boundary - 1,
        boundary,
    );
    assert_big_range(
        server.addr,
        &format!("bytes={boundary}-{boundary}"),
        boundary,
        boundary,
    );
    assert_big_range(server.addr, "bytes=-16", BIG_SIZE - 16, last);
    assert_big_range(
        server.addr,
        &format!("bytes={}-{}", BIG_SIZE - 100, BIG_SIZE + 1000),
        BIG_SIZE - 100,
        last,
    );
    assert_big_range(
        server.addr,
        &format!("bytes={}-{}", 3 * GIB - 10, 3 * GIB + 20),
        3 * GIB - 10,
        3 * GIB + 20,
    );
    assert_big_range(server.addr, "bytes=0-63", 0, 63);
    // One past the end is unsatisfiable; the size in Content-Range is the full 64-bit size.
    let response = get_with(
        server.addr,
        "/big.bin",
        &format!("Range: bytes={BIG_SIZE}-\r\n"),
    );
    assert_eq!(response.status, 416);
    assert_eq!(
        response.header("content-range"),
        Some(format!("bytes */{BIG_SIZE}").as_str())
    );
}

fn vm_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("worker status");
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .expect("VmRSS line");
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn memory_stays_flat_while_ten_clients_download_gigabytes_of_a_big_file_at_once() {
    const CLIENTS: usize = 10;
    /// Each client downloads the last 2 GiB of the big file (across the 4 GiB mark): a Range keeps
    /// the test short (20 GiB in all) while every download is still multi-gigabyte.
    const PER_CLIENT: u64 = 2 * GIB;
    const RSS_LIMIT_KIB: u64 = 64 * 1024;

    let site = Site::new();
    big_sparse_file(&site);
    let server = serve(&site);
    let workers = server.worker_pids();
    assert!(!workers.is_empty(), "no worker processes");
    let before: Vec<u64> = workers.iter().map(|&pid| vm_rss_kib(pid)).collect();

    // Sampling starts once every client has its response head (all ten downloads are in flight
    // in the worker) and goes on while they stream.
    let (started_tx, started_rx) = std::sync::mpsc::channel();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let addr = server.addr;
            let started_tx = started_tx.clone();
            std::thread::spawn(move || {
                let request =
                    format!("GET /big.bin HTTP/1.1\r\nHost: t\r\nRange: bytes=-{PER_CLIENT}\r\nConnection: close\r\n\r\n");
                let (response, mut reader) = request_head(addr, &request);
                let _ = started_tx.send(());
                assert_eq!(response.status, 206);
                assert_eq!(response.header("content-length"), Some(PER_CLIENT.to_string().as_str()));
                let first = BIG_SIZE - PER_CLIENT;
                assert_eq!(
                    response.header("content-range"),
                    Some(format!("bytes {first}-{}/{BIG_SIZE}", BIG_SIZE - 1).as_str())
                );
                // Discard the bytes, checking only the last marker at the very end.
                let mut tail = Vec::new();
                let received = stream_body(&mut reader, |offset, piece| {
                    let end = offset + piece.len() as u64;
                    if end + 16 > PER_CLIENT {
                        tail.extend_from_slice(piece);
                    } else {
                        tail.clear();
                    }
                });
                assert!(tail.ends_with(b"LAST-16-BYTES-!!"), "the download did not end with the file's last bytes");
                received
            })
        })
        .collect();
    for _ in 0..CLIENTS {
        started_rx
            .recv_timeout(PATIENCE)
            .expect("every client got its response head");
    }

    let mut samples = Vec::new();
    while !clients.iter().all(|c| c.is_finished()) {
        let rss: Vec<u64> = workers.iter().map(|&pid| vm_rss_kib(pid)).collect();
        samples.push(rss);
        std::thread::sleep(Duration::from_millis(100));
    }
    for client in clients {
        assert_eq!(client.join().expect("client thread"), PER_CLIENT);
    }
    let peak = samples.iter().flatten().copied().max().unwrap_or(0);
    eprintln!(
        "worker RSS before {before:?} KiB, peak {peak} KiB over {} samples",
        samples.len()
    );
    assert!(!samples.is_empty());
    assert!(
        peak < RSS_LIMIT_KIB,
        "worker RSS reached {peak} KiB while serving {CLIENTS} big downloads"
    );
}

// ---------------------------------------------------------------------------------------------
// 8. Ranges, validators, conditional requests, precompressed siblings
// ---------------------------------------------------------------------------------------------

/// 100 distinct-ish bytes: "00010203...".
fn hundred_bytes() -> Vec<u8> {
    (0..50)
        .flat_map(|i| format!("{i:02}").into_bytes())
        .collect()
}

#[test]
fn single_ranges_get_206_with_content_range() {
    let site = Site::new();
    let data = hundred_bytes();
    site.file("data.txt", &data);
    let server = serve(&site);
    for (range, start, end) in [
        ("bytes=0-9", 0, 9),
        ("bytes=10-19", 10, 19),
        ("bytes=99-99", 99, 99),
        ("bytes=95-200", 95, 99),
        ("bytes=-5", 95, 99),
        ("bytes=-100", 0, 99),
        ("bytes=-500", 0, 99),
        ("bytes=90-", 90, 99),
        ("bytes=0-", 0, 99),
    ] {
        let response = get_with(server.addr, "/data.txt", &format!("Range: {range}\r\n"));
        assert_eq!(response.status, 206, "{range}");
        assert_eq!(
            response.header("content-range"),
            Some(format!("bytes {start}-{end}/100").as_str()),
            "{range}"
        );
        assert_eq!(
            response.header("content-length"),
            Some((end - start + 1).to_string().as_str()),
            "{range}"
        );
        assert_eq!(response.body, &data[start..=end], "{range}");
        assert_eq!(
            response.header("content-type"),
            Some("text/plain; charset=utf-8"),
            "{range}"
        );
        assert!(response.header("etag").is_some(), "{range}");
    }
    // Bigger than the inline limit, so the sendfile path is used too.
    let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    site.file("big.dat", &big);
    let response = get_with(server.addr, "/big.dat", "Range: bytes=70000-170000\r\n");
    assert_eq!(response.status, 206);
    assert_eq!(
        response.header("content-range"),
        Some("bytes 70000-170000/200000")
    );
    assert!(response.body == big[70_000..=170_000]);
}

#[test]
fn unsatisfiable_range_gets_416_with_the_size() {
    let site = Site::new();
    site.file("data.txt", &hundred_bytes());
    let server = serve(&site);
    for range in ["bytes=100-", "bytes=100-200", "bytes=1000-1001", "bytes=-0"] {
        let response = get_with(server.addr, "/data.txt", &format!("Range: {range}\r\n"));
        assert_eq!(response.status, 416, "{range}");
        assert_eq!(
            response.header("content-range"),
            Some("bytes */100"),
            "{range}"
        );
        assert!(
            !response.text().contains("0001020304"),
            "{range}: file content in a 416"
        );
    }
}

#[test]
fn multi_range_and_unparsable_ranges_get_the_full_file() {
    let site = Site::new();
    let data = hundred_bytes();
    site.file("data.txt", &data);
    let server = serve(&site);
    for range in [
        "bytes=0-1,5-6",
        "bytes=0-9, 20-29",
        "items=0-9",
        "bytes=abc",
        "bytes=9-3",
    ] {
        let response = get_with(server.addr, "/data.txt", &format!("Range: {range}\r\n"));
        assert_eq!(response.status, 200, "{range}");
        assert_eq!(response.body, data, "{range}");
        assert_eq!(response.header("content-range"), None, "{range}");
    }
}

/// Sets a file's modification time to 2001-09-09T01:46:40Z.
const FIXED_MTIME: u64 = 1_000_000_000;
const FIXED_HTTP_DATE: &str = "Sun, 09 Sep 2001 01:46:40 GMT";

fn set_fixed_mtime(path: &Path) {
    let file = File::options().write(true).open(path).unwrap();
    file.set_modified(UNIX_EPOCH + Duration::from_secs(FIXED_MTIME))
        .unwrap();
}

#[test]
fn every_file_response_has_etag_and_last_modified() {
    let site = Site::new();
    site.file("index.html", b"index");
    site.file("data.txt", &hundred_bytes());
    site.file("large.bin", &vec![7u8; 100_000]);
    for name in ["index.html", "data.txt", "large.bin"] {
        set_fixed_mtime(&site.root().join(name));
    }
    // Validity 0, so the change at the end is seen at once.
    let server = Server::start(&[
        "serve",
        "-r",
        &site.root_str(),
        "--file-cache-validity",
        "0",
    ]);
    let mut etags = Vec::new();
    for (target, extra) in [
        ("/", ""),
        ("/index.html", ""),
        ("/data.txt", ""),
        ("/data.txt", "Range: bytes=1-2\r\n"),
        ("/large.bin", ""),
    ] {
        let response = get_with(server.addr, target, extra);
        assert!(response.status == 200 || response.status == 206, "{target}");
        assert_eq!(
            response.header("last-modified"),
            Some(FIXED_HTTP_DATE),
            "{target}"
        );
        let etag = response.header("etag").expect("ETag").to_string();
        assert!(
            etag.starts_with('"') && etag.ends_with('"') && etag.len() > 2,
            "{target}: ETag {etag:?}"
        );
        etags.push(etag);
    }
    let head = exchange(
        server.addr,
        b"HEAD /data.txt HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(head.header("etag"), Some(etags[2].as_str()));
    assert_eq!(head.header("last-modified"), Some(FIXED_HTTP_DATE));
    // Same file, same tag; different files (different sizes here), different tags.
    assert_eq!(etags[0], etags[1]);
    assert_eq!(etags[2], etags[3]);
    assert_ne!(etags[1], etags[2]);
    assert_ne!(etags[2], etags[4]);

    // Changing the file changes its ETag.
    site.file("data.txt", b"changed");
    let changed = get(server.addr, "/data.txt");
    assert_ne!(changed.header("etag"), Some(etags[2].as_str()));
}

/// The whole raw answer to a conditional GET, checking a 304 has no body.
fn assert_304_without_body(addr: SocketAddr, target: &str, extra: &str) -> Response {
    let request = format!("GET {target} HTTP/1.1\r\nHost: t\r\n{extra}Connection: close\r\n\r\n");
    let raw = raw_until_close(addr, request.as_bytes());
    let text = String::from_utf8_lossy(&raw).into_owned();
    assert_eq!(status_of(&raw), 304, "{extra:?}:\n{text}");
    let (head, rest) = text.split_once("\r\n\r\n").expect("end of head");
    assert_eq!(rest, "", "{extra:?}: a 304 has no body");
    let response = read_response(&mut BufReader::new(raw.as_slice()), false).unwrap();
    assert!(
        !head.to_ascii_lowercase().contains("content-range"),
        "{head}"
    );
    response
}

#[test]
fn if_none_match_with_the_current_etag_gets_304() {
    let site = Site::new();
    site.file("data.txt", &hundred_bytes());
    let server = serve(&site);
    let etag = get(server.addr, "/data.txt")
        .header("etag")
        .unwrap()
        .to_string();

    let response = assert_304_without_body(
        server.addr,
        "/data.txt",
        &format!("If-None-Match: {etag}\r\n"),
    );
    assert_eq!(response.header("etag"), Some(etag.as_str()));
    assert_304_without_body(server.addr, "/data.txt", "If-None-Match: *\r\n");
    assert_304_without_body(
        server.addr,
        "/data.txt",
        &format!("If-None-Match: \"other\", {etag}\r\n"),
    );
    assert_304_without_body(
        server.addr,
        "/data.txt",
        &format!("If-None-Match: W/{etag}\r\n"),
    );
    // A Range does not change the answer to a matching If-None-Match.
    assert_304_without_body(
        server.addr,
        "/data.txt",
        &format!("If-None-Match: {etag}\r\nRange: bytes=0-1\r\n"),
    );

    for other in ["\"nope\"", "\"nope\", \"also-not\"", "W/\"nope\""] {
        let response = get_with(
            server.addr,
            "/data.txt",
            &format!("If-None-Match: {other}\r\n"),
        );
        assert_eq!(response.status, 200, "{other}");
        assert_eq!(response.body, hundred_bytes(), "{other}");
    }
}

#[test]
fn if_modified_since_the_last_modified_date_gets_304_and_older_gets_200() {
    let site = Site::new();
    site.file("data.txt", &hundred_bytes());
    set_fixed_mtime(&site.root().join("data.txt"));
    let server = serve(&site);
    let response = get(server.addr, "/data.txt");
    assert_eq!(response.header("last-modified"), Some(FIXED_HTTP_DATE));

    let response = assert_304_without_body(
        server.addr,
        "/data.txt",
        &format!("If-Modified-Since: {FIXED_HTTP_DATE}\r\n"),
    );
    assert!(response.header("etag").is_some());
    assert_304_without_body(
        server.addr,
        "/data.txt",
        "If-Modified-Since: Mon, 01 Jan 2024 00:00:00 GMT\r\n",
    );
    for older in [
        "Sun, 09 Sep 2001 01:46:39 GMT",
        "Thu, 01 Jan 1970 00:00:00 GMT",
    ] {
        let response = get_with(
            server.addr,
            "/data.txt",
            &format!("If-Modified-Since: {older}\r\n"),
        );
        assert_eq!(response.status, 200, "{older}");
        assert_eq!(response.body, hundred_bytes(), "{older}");
    }
    // A date that cannot be parsed is ignored.
    assert_eq!(
        get_with(server.addr, "/data.txt", "If-Modified-Since: yesterday\r\n").status,
        200
    );
}

#[test]
fn if_none_match_takes_precedence_over_if_modified_since() {
    let site = Site::new();
    site.file("data.txt", &hundred_bytes());
    set_fixed_mtime(&site.root().join("data.txt"));
    let server = serve(&site);
    let etag = get(server.addr, "/data.txt")
        .header("etag")
        .unwrap()
        .to_string();

    // The date alone would give 304; the failing ETag wins.
    let response = get_with(
        server.addr,
        "/data.txt",
        &format!("If-None-Match: \"stale\"\r\nIf-Modified-Since: {FIXED_HTTP_DATE}\r\n"),
    );
    assert_eq!(response.status, 200);
    assert_eq!(response.body, hundred_bytes());
    // The date alone would give 200; the matching ETag wins.
    assert_304_without_body(
        server.addr,
        "/data.txt",
        &format!("If-Modified-Since: Thu, 01 Jan 1970 00:00:00 GMT\r\nIf-None-Match: {etag}\r\n"),
    );
}

#[test]
fn if_range_honours_the_range_only_for_the_current_validator() {
    let site = Site::new();
    let data = hundred_bytes();
    site.file("data.txt", &data);
    set_fixed_mtime(&site.root().join("data.txt"));
    let server = serve(&site);
    let etag = get(server.addr, "/data.txt")
        .header("etag")
        .unwrap()
        .to_string();

    let response = get_with(
        server.addr,
        "/data.txt",
        &format!("Range: bytes=10-19\r\nIf-Range: {etag}\r\n"),
    );
    assert_eq!(response.status, 206);
    assert_eq!(response.header("content-range"), Some("bytes 10-19/100"));
    assert_eq!(response.body, &data[10..20]);

    let response = get_with(
        server.addr,
        "/data.txt",
        &format!("Range: bytes=10-19\r\nIf-Range: {FIXED_HTTP_DATE}\r\n"),
    );
    assert_eq!(response.status, 206);
    assert_eq!(response.body, &data[10..20]);

    for stale in [
        "\"stale-etag\"".to_string(),
        format!("W/{etag}"),
        "Thu, 01 Jan 1970 00:00:00 GMT".to_string(),
    ] {
        let response = get_with(
            server.addr,
            "/data.txt",
            &format!("Range: bytes=10-19\r\nIf-Range: {stale}\r\n"),
        );
        assert_eq!(response.status, 200, "{stale}");
        assert_eq!(response.body, data, "{stale}");
        assert_eq!(response.header("content-range"), None, "{stale}");
    }
}

/// A site with `style.css` and its precompressed siblings (their bytes are only labels: what is
/// checked is which file the server picked).
fn precompressed_site() -> Site {
    let site = Site::new();
    site.file("style.css", b"body { color: red; } /* plain */");
    site.file("style.css.gz", b"\x1f\x8bGZIP-BYTES-OF-STYLE");
    site.file("style.css.br", b"BROTLI-BYTES-OF-STYLE");
    site.file("gz-only.js", b"plain js");
    site.file("gz-only.js.gz", b"\x1f\x8bGZIP-BYTES-OF-JS");
    site
}

#[test]
fn gzip_sibling_is_sent_when_gzip_is_accepted() {
    let site = precompressed_site();
    let server = serve(&site);
    let plain_etag = get(server.addr, "/style.css")
        .header("etag")
        .unwrap()
        .to_string();
    for accept in ["gzip", "gzip, deflate", "deflate, gzip;q=0.5", "GZIP"] {
        let response = get_with(
            server.addr,
            "/style.css",
            &format!("Accept-Encoding: {accept}\r\n"),
        );
        assert_eq!(response.status, 200, "{accept}");
        assert_eq!(response.body, b"\x1f\x8bGZIP-BYTES-OF-STYLE", "{accept}");
        assert_eq!(
            response.header("content-encoding"),
            Some("gzip"),
            "{accept}"
        );
        assert_eq!(response.header("vary"), Some("Accept-Encoding"), "{accept}");
        assert_eq!(
            response.header("content-type"),
            Some("text/css; charset=utf-8"),
            "{accept}"
        );
        assert_eq!(response.header("content-length"), Some("21"), "{accept}");
        assert_ne!(
            response.header("etag"),
            Some(plain_etag.as_str()),
            "{accept}: each encoding needs its own ETag"
        );
    }
    let response = get_with(server.addr, "/gz-only.js", "Accept-Encoding: br, gzip\r\n");
    assert_eq!(response.body, b"\x1f\x8bGZIP-BYTES-OF-JS");
    assert_eq!(response.header("content-encoding"), Some("gzip"));
    assert_eq!(
        response.header("content-type"),
        Some("text/javascript; charset=utf-8")
    );
}

#[test]
fn brotli_sibling_is_preferred_when_both_are_accepted() {
    let site = precompressed_site();
    let server = serve(&site);
    for accept in ["br, gzip", "gzip, br", "gzip, deflate, br", "br"] {
        let response = get_with(
            server.addr,
            "/style.css",
            &format!("Accept-Encoding: {accept}\r\n"),
        );
        assert_eq!(response.status, 200, "{accept}");
        assert_eq!(response.body, b"BROTLI-BYTES-OF-STYLE", "{accept}");
        assert_eq!(response.header("content-encoding"), Some("br"), "{accept}");
        assert_eq!(response.header("vary"), Some("Accept-Encoding"), "{accept}");
        assert_eq!(
            response.header("content-type"),
            Some("text/css; charset=utf-8"),
            "{accept}"
        );
    }
    // br refused: gzip.
    let response = get_with(
        server.addr,
        "/style.css",
        "Accept-Encoding: br;q=0, gzip\r\n",
    );
    assert_eq!(response.header("content-encoding"), Some("gzip"));
}

#[test]
fn plain_file_is_sent_without_a_usable_accept_encoding() {
    let site = precompressed_site();
    let server = serve(&site);
    for extra in [
        "",
        "Accept-Encoding: gzip;q=0\r\n",
        "Accept-Encoding: gzip;q=0, br;q=0\r\n",
        "Accept-Encoding: identity\r\n",
        "Accept-Encoding: deflate\r\n",
    ] {
        let response = get_with(server.addr, "/style.css", extra);
        assert_eq!(response.status, 200, "{extra:?}");
        assert_eq!(
            response.body, b"body { color: red; } /* plain */",
            "{extra:?}"
        );
        assert_eq!(response.header("content-encoding"), None, "{extra:?}");
        assert_eq!(
            response.header("content-type"),
            Some("text/css; charset=utf-8"),
            "{extra:?}"
        );
    }
}

#[test]
fn plain_response_of_a_file_with_a_sibling_varies_on_accept_encoding() {
    let site = precompressed_site();
    site.file("alone.css", b"no siblings");
    let server = serve(&site);
    // Three rounds: the first answer comes from the file, the later ones from the file cache.
    for round in 0..3 {
        for extra in [
            "",
            "Accept-Encoding: identity\r\n",
            "Accept-Encoding: gzip;q=0, br;q=0\r\n",
        ] {
            let response = get_with(server.addr, "/style.css", extra);
            assert_eq!(response.body, b"body { color: red; } /* plain */");
            assert_eq!(
                response.header("vary"),
                Some("Accept-Encoding"),
                "round {round}, {extra:?}"
            );
        }
        // Only a gzip sibling exists and the client takes only br: the plain file, which varies.
        let response = get_with(server.addr, "/gz-only.js", "Accept-Encoding: br\r\n");
        assert_eq!(response.body, b"plain js", "round {round}");
        assert_eq!(response.header("content-encoding"), None, "round {round}");
        assert_eq!(
            response.header("vary"),
            Some("Accept-Encoding"),
            "round {round}"
        );
        // No sibling at all: nothing varies, whatever the client accepts.
        for extra in ["", "Accept-Encoding: gzip, br\r\n"] {
            let response = get_with(server.addr, "/alone.css", extra);
            assert_eq!(response.body, b"no siblings", "round {round}, {extra:?}");
            assert_eq!(response.header("vary"), None, "round {round}, {extra:?}");
        }
    }
    // A 304 names the same Vary as the 200 it stands for.
    let etag = get(server.addr, "/style.css")
        .header("etag")
        .unwrap()
        .to_string();
    let response = assert_304_without_body(
        server.addr,
        "/style.css",
        &format!("If-None-Match: {etag}\r\n"),
    );
    assert_eq!(response.header("vary"), Some("Accept-Encoding"));
}

#[test]
fn a_cached_plain_file_does_not_hide_its_siblings() {
    let site = precompressed_site();
    let server = serve(&site);
    for _ in 0..3 {
        assert_eq!(get(server.addr, "/gz-only.js").body, b"plain js");
    }
    // Cached now, and the cache holds only the plain file: a gzip client still gets the sibling,
    // and a br-only client the plain file, alternately.
    for _ in 0..3 {
        let response = get_with(server.addr, "/gz-only.js", "Accept-Encoding: gzip\r\n");
        assert_eq!(response.body, b"\x1f\x8bGZIP-BYTES-OF-JS");
        assert_eq!(response.header("content-encoding"), Some("gzip"));
        let response = get_with(server.addr, "/gz-only.js", "Accept-Encoding: br\r\n");
        assert_eq!(response.body, b"plain js");
    }
}

#[test]
fn a_sibling_created_after_the_file_was_cached_is_served() {
    let site = Site::new();
    site.file("app.js", b"plain app");
    site.file("docs/index.html", b"plain index");
    // Validity 0: every cache hit looks at the file (and its siblings) again.
    let server = Server::start(&[
        "serve",
        "-r",
        &site.root_str(),
        "--file-cache-validity",
        "0",
    ]);
    for _ in 0..3 {
        for (path, body) in [("/app.js", &b"plain app"[..]), ("/docs/", b"plain index")] {
            let response = get_with(server.addr, path, "Accept-Encoding: gzip\r\n");
            assert_eq!(response.body, body, "{path}");
            assert_eq!(response.header("vary"), None, "{path}");
        }
    }
    site.file("app.js.gz", b"\x1f\x8bGZIPPED-APP");
    site.file("docs/index.html.gz", b"\x1f\x8bGZIPPED-INDEX");
    for (path, gzipped, plain) in [
        ("/app.js", &b"\x1f\x8bGZIPPED-APP"[..], &b"plain app"[..]),
        ("/docs/", b"\x1f\x8bGZIPPED-INDEX", b"plain index"),
    ] {
        let response = get_with(server.addr, path, "Accept-Encoding: gzip\r\n");
        assert_eq!(response.body, gzipped, "{path}");
        assert_eq!(response.header("content-encoding"), Some("gzip"), "{path}");
        let response = get(server.addr, path);
        assert_eq!(response.body, plain, "{path}");
        assert_eq!(response.header("vary"), Some("Accept-Encoding"), "{path}");
    }
}

#[test]
fn precompressed_sibling_supports_validators_and_ranges() {
    let site = precompressed_site();
    let server = serve(&site);
    let gz = get_with(server.addr, "/style.css", "Accept-Encoding: gzip\r\n");
    let gz_etag = gz.header("etag").unwrap().to_string();
    let response = assert_304_without_body(
        server.addr,
        "/style.css",
        &format!("Accept-Encoding: gzip\r\nIf-None-Match: {gz_etag}\r\n"),
    );
    assert_eq!(response.header("etag"), Some(gz_etag.as_str()));
    // The plain representation does not match the gzip one's tag.
    assert_eq!(
        get_with(
            server.addr,
            "/style.css",
            &format!("If-None-Match: {gz_etag}\r\n")
        )
        .status,
        200
    );
    // A range applies to the bytes actually sent.
    let response = get_with(
        server.addr,
        "/style.css",
        "Accept-Encoding: gzip\r\nRange: bytes=2-5\r\n",
    );
    assert_eq!(response.status, 206);
    assert_eq!(response.body, b"GZIP");
    assert_eq!(response.header("content-range"), Some("bytes 2-5/21"));
    assert_eq!(response.header("content-encoding"), Some("gzip"));
}

// ---- The file cache (small files' bytes, larger files' descriptors) never serves stale or
// escaped bytes ----

#[test]
fn a_large_cached_file_replaced_or_removed_is_served_fresh() {
    let site = Site::new();
    let first = vec![b'a'; 100_000];
    let second = vec![b'b'; 120_000];
    site.file("big.bin", &first);
    let server = Server::start(&[
        "serve",
        "-r",
        &site.root_str(),
        "--file-cache-validity",
        "0",
    ]);
    for _ in 0..3 {
        assert!(get(server.addr, "/big.bin").body == first);
    }
    // Replaced by rename (a new inode) while the old descriptor is held: the new file is served.
    let replacement = site.root().join("big.new");
    std::fs::write(&replacement, &second).unwrap();
    std::fs::rename(&replacement, site.root().join("big.bin")).unwrap();
    for _ in 0..2 {
        let response = get(server.addr, "/big.bin");
        assert_eq!(response.header("content-length"), Some("120000"));
        assert!(response.body == second);
    }
    // A range of the cached descriptor.
    let response = get_with(server.addr, "/big.bin", "Range: bytes=119990-\r\n");
    assert_eq!(response.status, 206);
    assert_eq!(response.body, vec![b'b'; 10]);
    // Removed: 404, not the bytes of the descriptor still open.
    std::fs::remove_file(site.root().join("big.bin")).unwrap();
    assert_eq!(get(server.addr, "/big.bin").status, 404);
}

#[test]
fn many_large_files_are_served_past_the_open_descriptor_limit() {
    let site = Site::new();
    for i in 0..300 {
        site.file(&format!("f{i}.bin"), &vec![(i % 251) as u8; 20_000]);
    }
    let server = serve(&site);
    for round in 0..2 {
        for i in 0..300 {
            let response = get(server.addr, &format!("/f{i}.bin"));
            assert_eq!(response.status, 200, "round {round}, file {i}");
            assert!(
                response.body == vec![(i % 251) as u8; 20_000],
                "round {round}, file {i}"
            );
        }
    }
}

#[test]
fn a_changed_file_is_served_fresh_after_being_cached() {
    let site = Site::new();
    site.file("page.html", b"first version");
    site.file("dir/index.html", b"first index");
    // Validity 0: every hit is checked against the file, so a change shows at once.
    let server = Server::start(&[
        "serve",
        "-r",
        &site.root_str(),
        "--file-cache-validity",
        "0",
    ]);
    for _ in 0..3 {
        assert_eq!(get(server.addr, "/page.html").body, b"first version");
        assert_eq!(get(server.addr, "/dir/").body, b"first index");
    }
    // Same length, new contents: the cache must notice through the modification time or inode.
    std::thread::sleep(Duration::from_millis(20));
    site.file("page.html", b"other version");
    let replacement = site.root().join("dir/index.new");
    std::fs::write(&replacement, b"second index, longer").unwrap();
    std::fs::rename(&replacement, site.root().join("dir/index.html")).unwrap();
    assert_eq!(get(server.addr, "/page.html").body, b"other version");
    assert_eq!(get(server.addr, "/dir/").body, b"second index, longer");
    std::fs::remove_file(site.root().join("page.html")).unwrap();
    assert_eq!(get(server.addr, "/page.html").status, 404);
}

#[test]
fn a_cached_file_replaced_by_a_symlink_outside_is_refused() {
    let site = site_with_secret();
    site.file("swap.txt", b"harmless");
    let server = Server::start(&[
        "serve",
        "-r",
        &site.root_str(),
        "--file-cache-validity",
        "0",
    ]);
    for _ in 0..3 {
        assert_eq!(get(server.addr, "/swap.txt").body, b"harmless");
    }
    std::fs::remove_file(site.root().join("swap.txt")).unwrap();
    symlink(
        site.dir.path().join("secret.txt"),
        site.root().join("swap.txt"),
    );
    assert_refused(server.addr, &raw_get("/swap.txt"));
}

#[test]
fn with_the_default_validity_a_change_is_seen_after_the_window() {
    let site = site_with_secret();
    site.file("news.txt", b"old news");
    let server = serve(&site);
    assert_eq!(get(server.addr, "/news.txt").body, b"old news");
    site.file("news.txt", b"new news");
    std::fs::remove_file(site.root().join("sub/page.html")).unwrap();
    symlink(
        site.dir.path().join("secret.txt"),
        site.root().join("sub/page.html"),
    );
    // The default window is one second; wait it out, then the cache must check again.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(get(server.addr, "/news.txt").body, b"new news");
    assert_refused(server.addr, &raw_get("/sub/page.html"));
}

/// Regression: with the default document root "." a server published /.git/config and /.env.
#[test]
fn dotfiles_are_hidden_unless_asked_for_but_well_known_is_served() {
    let site = Site::new();
    site.file(".git/config", b"[remote] url = secret")
        .file(".env", b"PASSWORD=secret")
        .file("dir/.hidden", b"hidden")
        .file("dir/shown.txt", b"shown")
        .file(".well-known/acme-challenge/token", b"challenge");
    let server = Server::start(&["serve", "-r", &site.root_str(), "--list-dirs"]);
    for path in [
        "/.git/config",
        "/.env",
        "/dir/.hidden",
        "/%2egit/config",
        "/.git/",
    ] {
        assert_eq!(get(server.addr, path).status, 404, "{path}");
    }
    assert_eq!(
        get(server.addr, "/.well-known/acme-challenge/token").body,
        b"challenge"
    );
    let listing = get(server.addr, "/dir/").text();
    assert!(listing.contains("shown.txt"), "{listing}");
    assert!(!listing.contains(".hidden"), "{listing}");

    let open = Server::start(&[
        "serve",
        "-r",
        &site.root_str(),
        "--list-dirs",
        "--serve-dotfiles",
    ]);
    assert_eq!(get(open.addr, "/.env").body, b"PASSWORD=secret");
    assert!(get(open.addr, "/dir/").text().contains(".hidden"));
}

/// Regression: the example site linked absolutely, so mounted at /site/ beside the demo app its
/// stylesheet and links missed; and /site without the slash went to the app's 404.
#[test]
fn the_example_site_works_mounted_under_a_prefix() {
    let site = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/site");
    let mount = format!("/site/={}", site.display());
    let server = Server::start(&[
        "serve",
        "-r",
        &site.display().to_string(),
        "--static",
        &mount,
    ]);
    let redirect = get(server.addr, "/site?x=1");
    assert_eq!(redirect.status, 301);
    assert_eq!(redirect.header("location"), Some("/site/?x=1"));
    for base in ["/", "/site/"] {
        let page = get(server.addr, base).text();
        let links: Vec<&str> = page
            .split('"')
            .skip(1)
            .step_by(2)
            .filter(|value| {
                !value.contains(' ')
                    && (value.ends_with('/') || value.contains('.') || *value == "docs")
            })
            .filter(|value| !["en", "utf-8", "stylesheet"].contains(value))
            .collect();
        assert!(links.len() >= 4, "links found on {base}: {links:?}");
        for link in links {
            assert!(!link.starts_with('/'), "{link} is relative");
            let response = get(server.addr, &format!("{base}{link}"));
            assert!(
                response.status == 200 || response.status == 301,
                "{base}{link}: {}",
                response.status
            );
        }
    }
}
