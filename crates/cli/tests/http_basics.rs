//! Smoke tests of the static server; the detailed areas have their own modules.

use crate::support::{get, Server, Site};

#[test]
fn serves_an_index_file() {
    let site = Site::new();
    site.file("index.html", b"<h1>hi</h1>");
    let server = Server::start(&["serve", "-r", &site.root_str()]);
    let response = get(server.addr, "/");
    assert_eq!(response.status, 200);
    assert_eq!(response.body, b"<h1>hi</h1>");
    assert_eq!(
        response.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(response.header("content-length"), Some("11"));
    assert!(response.header("date").unwrap().ends_with(" GMT"));
    assert!(response.header("server").unwrap().starts_with("tern/"));
    assert_eq!(response.header("connection"), Some("close"));
}
