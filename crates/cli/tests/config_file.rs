//! Options from a TOML file (`--config FILE`, `TERN_CONFIG`, or `[tool.tern]` in the working
//! directory's pyproject.toml), seen through what the server then does: the limits it enforces,
//! the files it serves, the lines it answers, and the exit status when the file is wrong.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use crate::support::{connect, exchange, get, Server, Site};

/// The status of `GET /a.txt` carrying a body of `length` bytes (413 above --max-body-size).
fn status_with_body(server: &Server, length: usize) -> u16 {
    let mut request = format!(
        "GET /a.txt HTTP/1.1\r\nHost: test\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n"
    )
    .into_bytes();
    request.resize(request.len() + length, b'x');
    exchange(server.addr, &request).status
}

fn site() -> Site {
    let site = Site::new();
    site.file("a.txt", b"alpha");
    site
}

/// Writes `text` to `name` in the site's folder (beside the root); returns its path.
fn write(site: &Site, name: &str, text: &str) -> String {
    let path = site.dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path.to_string_lossy().into_owned()
}

/// A TOML string holding `path`.
fn quoted(path: &Path) -> String {
    format!("{:?}", path.to_string_lossy())
}

/// `tern <args>` run in `dir`, expected to stop at start-up: (exit status, stderr).
fn run_failing(dir: &Path, args: &[&str]) -> (Option<i32>, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_tern"))
        .args(args)
        .args(["--port", "0"])
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("run tern");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn a_config_file_sets_the_document_root_a_mount_and_a_limit() {
    let site = site();
    let media = site.dir.path().join("media");
    std::fs::create_dir(&media).unwrap();
    std::fs::write(media.join("clip.txt"), b"from the mount").unwrap();
    let config = write(
        &site,
        "tern.toml",
        &format!(
            "docroot = {}\nstatic = [\"/media/={}\"]\nmax_body_size = 100\nlist-dirs = true\n",
            quoted(&site.root()),
            media.display()
        ),
    );
    let server = Server::start(&["serve", "--config", &config]);
    assert_eq!(get(server.addr, "/a.txt").body, b"alpha");
    assert_eq!(get(server.addr, "/media/clip.txt").body, b"from the mount");
    assert!(get(server.addr, "/").text().contains("a.txt"), "list-dirs");
    assert_eq!(status_with_body(&server, 100), 200);
    assert_eq!(status_with_body(&server, 101), 413);
    let line = server.wait_for_log("config: read", "tern.toml");
    assert!(line.contains(&format!("config: read {config}")), "{line}");
}

#[test]
fn the_command_line_beats_the_environment_which_beats_the_file() {
    let site = site();
    let config = write(&site, "tern.toml", "max-body-size = \"100\"\n");
    let root = site.root_str();
    let args = ["serve", "-r", root.as_str(), "--config", config.as_str()];

    let file_only = Server::start(&args);
    assert_eq!(status_with_body(&file_only, 100), 200);
    assert_eq!(status_with_body(&file_only, 150), 413);
    drop(file_only);

    let env = [("TERN_MAX_BODY_SIZE", "200")];
    let file_and_env = Server::start_with(&args, &env);
    assert_eq!(status_with_body(&file_and_env, 150), 200);
    assert_eq!(status_with_body(&file_and_env, 250), 413);
    drop(file_and_env);

    let mut with_flag = args.to_vec();
    with_flag.extend(["--max-body-size", "300"]);
    let all_three = Server::start_with(&with_flag, &env);
    assert_eq!(status_with_body(&all_three, 250), 200);
    assert_eq!(status_with_body(&all_three, 350), 413);
}

#[test]
fn tool_tern_in_the_working_directorys_pyproject_is_read() {
    let site = site();
    write(
        &site,
        "pyproject.toml",
        "[project]\nname = \"example\"\n\n[tool.tern]\ndocroot = \"root\"\nmax-body-size = \"100\"\n",
    );
    let mut command = Command::new(env!("CARGO_BIN_EXE_tern"));
    command
        .args(["serve", "--port", "0"])
        .current_dir(site.dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let server = Server::from_command(command);
    assert_eq!(
        get(server.addr, "/a.txt").body,
        b"alpha",
        "docroot from the file"
    );
    assert_eq!(status_with_body(&server, 101), 413);
    let pyproject = site
        .dir
        .path()
        .canonicalize()
        .unwrap()
        .join("pyproject.toml");
    server.wait_for_log(
        &format!("config: read {} [tool.tern]", pyproject.display()),
        "",
    );
}

#[test]
fn a_pyproject_without_tool_tern_is_left_alone_and_config_wins_over_it() {
    let site = site();
    write(&site, "pyproject.toml", "[tool.black]\nline-length = 100\n");
    let mut command = Command::new(env!("CARGO_BIN_EXE_tern"));
    command
        .args(["serve", "-r", "root", "--port", "0"])
        .current_dir(site.dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let server = Server::from_command(command);
    assert_eq!(get(server.addr, "/a.txt").body, b"alpha");
    assert!(!server.log().contains("config: read"), "{}", server.log());
    drop(server);

    // With --config (here through TERN_CONFIG), pyproject.toml is not read: its bad key is
    // never seen.
    write(&site, "pyproject.toml", "[tool.tern]\nno-such-option = 1\n");
    let config = write(&site, "tern.toml", "max-body-size = \"100\"\n");
    let mut command = Command::new(env!("CARGO_BIN_EXE_tern"));
    command
        .args(["serve", "-r", "root", "--port", "0"])
        .env("TERN_CONFIG", &config)
        .current_dir(site.dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let server = Server::from_command(command);
    assert_eq!(status_with_body(&server, 101), 413);
    server.wait_for_log("config: read", &config);
}

#[test]
fn a_line_service_takes_its_options_from_the_file() {
    let site = site();
    let config = write(
        &site,
        "tern.toml",
        "prefix = \"you said: \"\nmax_line = 16\n",
    );
    let server = Server::start(&["echo", "--config", &config]);
    let mut conn = BufReader::new(connect(server.addr));
    conn.get_mut().write_all(b"hello\n").unwrap();
    let mut answer = String::new();
    conn.read_line(&mut answer).unwrap();
    assert_eq!(answer, "you said: hello\r\n");
    conn.get_mut().write_all(&[b'x'; 40]).unwrap();
    conn.get_mut().write_all(b"\n").unwrap();
    answer.clear();
    conn.read_line(&mut answer).unwrap();
    assert!(
        answer.starts_with("error"),
        "a line over max_line: {answer:?}"
    );
}

#[test]
fn an_unknown_key_stops_the_start_with_status_2_naming_the_key_and_the_file() {
    let site = site();
    let config = write(&site, "tern.toml", "workers = 2\nmax-bdoy-size = \"1M\"\n");
    for command in ["serve", "echo"] {
        let (code, stderr) = run_failing(site.dir.path(), &[command, "--config", &config]);
        assert_eq!(code, Some(2), "{command}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
        assert!(stderr.contains("max-bdoy-size"), "names the key: {stderr}");
        assert!(stderr.contains(&config), "names the file: {stderr}");
    }

    write(
        &site,
        "pyproject.toml",
        "[tool.tern]\ndocroot = \"root\"\nthreds = 4\n",
    );
    let (code, stderr) = run_failing(site.dir.path(), &["serve"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("pyproject.toml [tool.tern]: unknown key 'threds'"),
        "{stderr}"
    );
}

#[test]
fn a_value_of_the_wrong_type_stops_the_start_naming_the_key() {
    let site = site();
    for (toml, expected) in [
        (
            "port = \"8000\"\n",
            "port: expected an integer, found a string",
        ),
        ("list-dirs = \"yes\"\n", "list-dirs: expected true or false"),
        ("log = \"loud\"\n", "log: invalid value 'loud'"),
    ] {
        let config = write(&site, "tern.toml", toml);
        let (code, stderr) = run_failing(site.dir.path(), &["serve", "--config", &config]);
        assert_eq!(code, Some(2), "{toml}: {stderr}");
        assert!(stderr.contains(expected), "{toml}: {stderr}");
    }
    let (code, stderr) = run_failing(site.dir.path(), &["serve", "--config", "missing.toml"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("missing.toml: cannot read"),
        "names the file: {stderr}"
    );
}
