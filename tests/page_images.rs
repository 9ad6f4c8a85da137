//! The page's logo and offline image (issue 14: `POST`/`DELETE /api/admin/images/{logo,offline}`)
//! through the real binary, with images made by the `ffmpeg` CLI: each format is served back
//! byte for byte with its type and named in `/api/config`; what is not an image it claims to
//! be (an SVG with script, a PNG cut short, a small PNG of a 5000x5000 picture, a PNG sent as
//! JPEG) is refused at its field, a body announced over 4 MiB before it is sent, and the image
//! in use stays; another site cannot upload; the images outlive a restart; removing one is
//! kept too.

mod common;

use std::path::Path;
use std::process::Command;

use common::chat::{self, admin_auth, request, request_bytes};
use common::raw_http::announce_body;
use common::{http_get, Resp, Server, ServerOptions};

fn start(data_dir: &Path) -> Server {
    Server::start(ServerOptions {
        data_dir: Some(data_dir.to_owned()),
        ..chat::options("")
    })
}

/// One picture of `size` (WxH) in the format `file`'s extension says, made by ffmpeg.
fn image(dir: &Path, file: &str, size: &str) -> Vec<u8> {
    let path = dir.join(file);
    let status = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg(format!("testsrc2=size={size}"))
        .args(["-frames:v", "1", "-update", "1"])
        .arg(&path)
        .status()
        .expect("run ffmpeg");
    assert!(status.success(), "ffmpeg made no {file}");
    std::fs::read(&path).unwrap()
}

fn upload(server: &Server, slot: &str, content_type: &str, body: &[u8]) -> Resp {
    request_bytes(
        "POST",
        &server.url(&format!("/api/admin/images/{slot}")),
        content_type,
        body,
        Some(&admin_auth()),
    )
}

fn uploaded(server: &Server, slot: &str, content_type: &str, body: &[u8]) -> serde_json::Value {
    let r = upload(server, slot, content_type, body);
    assert_eq!(
        r.status,
        200,
        "upload {slot} as {content_type}: {}",
        r.text()
    );
    r.json()[slot].clone()
}

fn page_config(server: &Server) -> serde_json::Value {
    http_get(&server.url("/api/config")).unwrap().json()
}

/// `/logo` or `/offline-image` serves exactly `bytes` as `content_type`.
fn assert_served(server: &Server, path: &str, content_type: &str, bytes: &[u8]) {
    let r = request("GET", &server.url(path), None, None);
    assert_eq!(r.status, 200, "GET {path}");
    assert_eq!(r.header("content-type"), Some(content_type), "GET {path}");
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    assert!(r.body == bytes, "GET {path}: other bytes than uploaded");
}

#[test]
fn images_are_checked_served_with_their_type_and_outlive_a_restart() {
    let data = tempfile::tempdir().unwrap();
    let made = tempfile::tempdir().unwrap();
    let png = image(made.path(), "logo.png", "64x32");
    let jpeg = image(made.path(), "offline.jpg", "320x180");
    let webp = image(made.path(), "logo.webp", "48x48");
    let bomb = image(made.path(), "huge.png", "5000x5000");
    let server = start(data.path());
    assert_eq!(page_config(&server)["logoUrl"], serde_json::Value::Null);
    assert_eq!(request("GET", &server.url("/logo"), None, None).status, 404);
    let revision = page_config(&server)["pageRevision"].as_u64().unwrap();

    let logo = uploaded(&server, "logo", "image/png", &png);
    assert_eq!(logo["contentType"], "image/png", "{logo}");
    assert_eq!(
        (logo["width"].as_u64(), logo["height"].as_u64()),
        (Some(64), Some(32))
    );
    assert_eq!(logo["bytes"].as_u64(), Some(png.len() as u64));
    let config = page_config(&server);
    assert_eq!(config["logoUrl"], logo["url"], "{config}");
    assert!(logo["url"].as_str().unwrap().starts_with("/logo?v="));
    assert!(
        config["pageRevision"].as_u64().unwrap() > revision,
        "open pages must reload"
    );
    assert_served(&server, "/logo", "image/png", &png);

    let offline = uploaded(&server, "offline", "image/jpeg", &jpeg);
    assert_eq!(
        (offline["width"].as_u64(), offline["height"].as_u64()),
        (Some(320), Some(180))
    );
    assert_served(&server, "/offline-image", "image/jpeg", &jpeg);
    assert_eq!(page_config(&server)["offlineImageUrl"], offline["url"]);

    // Another format replaces the first, file and all.
    let logo = uploaded(&server, "logo", "image/webp", &webp);
    assert_served(&server, "/logo", "image/webp", &webp);
    assert!(data.path().join("images/logo.webp").is_file());
    assert!(!data.path().join("images/logo.png").exists());

    // Refused, at the field; the WebP stays.
    let svg = b"<svg xmlns=\"http://www.w3.org/2000/svg\" onload=\"alert(1)\"/>";
    for (content_type, body, says) in [
        ("image/png", &svg[..], "not a PNG, JPEG or WebP image"),
        ("image/png", &png[..png.len() / 2], "does not decode"),
        ("image/png", &bomb[..], "does not decode"),
        (
            "image/jpeg",
            &png[..],
            "starts like a image/png image, not the image/jpeg",
        ),
    ] {
        let r = upload(&server, "logo", content_type, body);
        assert_eq!(r.status, 400, "{says}: {}", r.text());
        let answer = r.json();
        assert_eq!(answer["field"], "logo", "{answer}");
        assert!(answer["error"].as_str().unwrap().contains(says), "{answer}");
    }
    assert_eq!(upload(&server, "logo", "image/svg+xml", svg).status, 415);
    // Refused from its headers (413), before any body is sent.
    let auth = admin_auth();
    let headers = [
        ("Authorization", auth.as_str()),
        ("Content-Type", "image/png"),
    ];
    assert_eq!(
        announce_body(
            &server,
            "/api/admin/images/logo",
            &headers,
            4 * 1024 * 1024 + 1
        ),
        413
    );
    assert_eq!(upload(&server, "banner", "image/png", &png).status, 404);
    // Not the owner, or another site with the owner's credentials.
    let anonymous = request_bytes(
        "POST",
        &server.url("/api/admin/images/logo"),
        "image/png",
        &png,
        None,
    );
    assert_eq!(anonymous.status, 401);
    let cross_site = common::agent()
        .post(&server.url("/api/admin/images/logo"))
        .set("Authorization", &admin_auth())
        .set("Origin", "http://attacker.example")
        .set("Content-Type", "image/png")
        .send_bytes(&png);
    assert!(
        matches!(cross_site, Err(ureq::Error::Status(403, _))),
        "an upload from another origin must be refused"
    );
    assert_served(&server, "/logo", "image/webp", &webp);
    let settings = chat::admin_get(&server, "/settings");
    assert_eq!(settings["images"]["logo"]["url"], logo["url"], "{settings}");
    // With no stream yet, the page's link preview shows the logo, by an absolute address.
    let page = http_get(&server.url("/")).unwrap().text();
    let og_image = format!(
        "<meta property=\"og:image\" content=\"{}{}\">",
        server.url(""),
        logo["url"].as_str().unwrap()
    );
    assert!(page.contains(&og_image), "{page}");
    assert!(page.contains("<meta name=\"twitter:card\" content=\"summary\">"));
    drop(server);

    // Kept across a restart; removing is kept too.
    let server = start(data.path());
    assert_served(&server, "/logo", "image/webp", &webp);
    assert_served(&server, "/offline-image", "image/jpeg", &jpeg);
    let removed = request(
        "DELETE",
        &server.url("/api/admin/images/logo"),
        None,
        Some(&admin_auth()),
    );
    assert_eq!(removed.status, 200, "{}", removed.text());
    assert_eq!(removed.json()["removed"], true);
    assert_eq!(request("GET", &server.url("/logo"), None, None).status, 404);
    assert_eq!(page_config(&server)["logoUrl"], serde_json::Value::Null);
    drop(server);
    let server = start(data.path());
    assert_eq!(page_config(&server)["logoUrl"], serde_json::Value::Null);
    assert_eq!(page_config(&server)["offlineImageUrl"], offline["url"]);
    let problems = chat::admin_get(&server, "/settings")["problems"].clone();
    assert_eq!(problems, serde_json::json!([]), "{problems}");
}
