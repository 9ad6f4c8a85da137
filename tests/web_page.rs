//! The page as the owner and a browser meet it over HTTP: the built-in page and hls.js are
//! served from the binary, an owner's `static_dir` replaces files one by one, nothing outside
//! it can be reached, and the status API is readable from other sites.

mod common;

use common::{http_get, Server, ServerOptions};

#[test]
fn built_in_page_and_vendored_player_are_served() {
    let server = Server::start(ServerOptions::default());
    let page = http_get(&server.url("/")).unwrap();
    assert_eq!(page.status, 200);
    assert!(page
        .header("content-type")
        .unwrap()
        .starts_with("text/html"));
    let html = page.text();
    assert!(
        html.contains("/vendor/hls.js/hls.min.js"),
        "the page loads the vendored hls.js"
    );
    let hls = http_get(&server.url("/vendor/hls.js/hls.min.js")).unwrap();
    assert_eq!(hls.status, 200);
    assert!(hls.header("content-type").unwrap().contains("javascript"));
    assert!(hls.body.len() > 100_000, "the whole minified hls.js");
    for path in ["/player.js", "/style.css"] {
        assert_eq!(http_get(&server.url(path)).unwrap().status, 200, "{path}");
    }
    // Nothing live yet: the master playlist is a 404 a player retries, never cached.
    let master = http_get(&server.master_url()).unwrap();
    assert_eq!(master.status, 404);
    assert_eq!(master.header("cache-control"), Some("no-store"));
    let status = http_get(&server.url("/api/status")).unwrap();
    assert_eq!(status.header("access-control-allow-origin"), Some("*"));
    assert_eq!(status.json()["online"], false);
}

#[test]
fn owner_files_override_the_built_in_page_one_by_one() {
    let owner = tempfile::tempdir().unwrap();
    std::fs::write(
        owner.path().join("index.html"),
        "<h1>my own stream page</h1>",
    )
    .unwrap();
    std::fs::write(owner.path().join("logo.svg"), "<svg/>").unwrap();
    let secret = owner
        .path()
        .parent()
        .unwrap()
        .join("selfcast-secret-outside.txt");
    std::fs::write(&secret, "not for the web").unwrap();
    let server = Server::start(ServerOptions {
        static_dir: Some(owner.path().to_path_buf()),
        ..ServerOptions::default()
    });

    assert_eq!(
        http_get(&server.url("/")).unwrap().text(),
        "<h1>my own stream page</h1>"
    );
    let logo = http_get(&server.url("/logo.svg")).unwrap();
    assert_eq!(logo.header("content-type"), Some("image/svg+xml"));
    // Not overridden: still the built-in one.
    assert_eq!(http_get(&server.url("/player.js")).unwrap().status, 200);
    // Raw requests: an HTTP client library would normalise these paths before sending them.
    for escape in [
        "/../selfcast-secret-outside.txt",
        "/%2e%2e/selfcast-secret-outside.txt",
        "/.hidden",
    ] {
        let response = raw_get(server.http_port, escape);
        assert!(
            !response.contains("not for the web"),
            "{escape} escaped static_dir"
        );
        assert!(
            !response.starts_with("HTTP/1.1 200"),
            "{escape}: {response}"
        );
    }
    let _ = std::fs::remove_file(secret);
}

/// One HTTP/1.1 GET with the path sent exactly as given; the whole response as text.
fn raw_get(port: u16, path: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response
}

#[test]
fn the_page_carries_link_preview_tags_with_its_text_escaped() {
    let server = Server::start(ServerOptions {
        title: "Synths & \"noise\" <live>".into(),
        ..ServerOptions::default()
    });
    let page = http_get(&server.url("/")).unwrap().text();
    assert!(
        page.contains(
            "<meta property=\"og:title\" content=\"Synths &amp; &quot;noise&quot; &lt;live&gt;\">"
        ),
        "{page}"
    );
    assert!(page.contains(&format!(
        "<meta property=\"og:url\" content=\"{}/\">",
        server.url("")
    )));
    // No stream and no logo yet: no image to show.
    assert!(!page.contains("property=\"og:image\""), "{page}");
    assert!(page.contains("<meta name=\"twitter:card\" content=\"summary\">"));
    assert!(!page.contains("selfcast:link-preview"));
}
