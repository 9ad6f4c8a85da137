//! The stream's preview image (`/thumbnail.jpg`, issue 14) through the real binary, with the
//! source passed through (so nothing else decodes video): absent before the first publish, a
//! JPEG of the source at most 640 wide while live (ffprobe reads it as such), still there after
//! the publish ends, for the page's offline poster and its link previews (`og:image`).

mod common;

use std::time::Duration;

use common::{ffprobe_json, fixture, http_get, poll_until, Publisher, Server, ServerOptions};

#[test]
fn a_live_stream_has_a_preview_image_that_outlives_it() {
    let fx = fixture();
    let server = Server::start(ServerOptions::default());
    let url = server.url("/thumbnail.jpg");
    let none = http_get(&url).unwrap();
    assert_eq!(
        none.status,
        404,
        "a preview before any stream: {}",
        none.text()
    );

    let mut publisher = Publisher::start("ffmpeg", &fx.path, &server.publish_url(), &["-t", "6"]);
    let image = poll_until(Duration::from_secs(30), Duration::from_millis(200), || {
        http_get(&url).ok().filter(|r| r.status == 200)
    })
    .unwrap_or_else(|| panic!("no preview image while live:\n{}", server.stderr()));
    assert_eq!(image.header("content-type"), Some("image/jpeg"));
    assert!(image.body.starts_with(&[0xFF, 0xD8]) && image.body.ends_with(&[0xFF, 0xD9]));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("preview.jpg");
    std::fs::write(&file, &image.body).unwrap();
    let probed = ffprobe_json(&file, &["-show_streams"]).expect("ffprobe reads the preview");
    let stream = &probed["streams"][0];
    assert_eq!(stream["codec_name"], "mjpeg", "{probed}");
    // The 1280x720 source, at most 640 wide.
    assert_eq!(
        (stream["width"].as_u64(), stream["height"].as_u64()),
        (Some(640), Some(360))
    );

    publisher.expect_success(Duration::from_secs(30), "ffmpeg publishing for 6 s");
    server.wait_online(false, Duration::from_secs(20));
    let after = http_get(&url).unwrap();
    assert_eq!(
        after.status, 200,
        "the preview is kept for the offline page"
    );
    assert_eq!(after.header("content-type"), Some("image/jpeg"));

    // The page's link preview points at it, by the address the page was asked by.
    let page = http_get(&server.url("/")).unwrap().text();
    let origin = server.url("");
    assert!(
        page.contains(&format!(
            "<meta property=\"og:image\" content=\"{origin}/thumbnail.jpg\">"
        )),
        "{page}"
    );
    assert!(
        page.contains("<meta name=\"twitter:card\" content=\"summary_large_image\">"),
        "{page}"
    );
}
