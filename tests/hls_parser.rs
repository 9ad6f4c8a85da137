//! Tests of the test tools themselves: the strict playlist parser, the URI resolver, the
//! date-time parser and the reload tracker in `common`. Quick, no server, no ffmpeg.

mod common;

use std::time::Instant;

use common::hls::{self, parse_date_time, parse_master, parse_media, resolve};
use common::{media_playlist_problems, Fetched, Tracker};

const MEDIA: &str = "#EXTM3U
#EXT-X-VERSION:7
#EXT-X-TARGETDURATION:2
#EXT-X-MEDIA-SEQUENCE:10
#EXT-X-DISCONTINUITY-SEQUENCE:2
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-MAP:URI=\"init-1.mp4\"
#EXT-X-PROGRAM-DATE-TIME:2024-05-01T12:00:00.000Z
#EXTINF:2.000,
seg10.m4s
#EXTINF:2.000,
seg11.m4s
#EXT-X-DISCONTINUITY
#EXT-X-MAP:URI=\"init-2.mp4\"
#EXT-X-PROGRAM-DATE-TIME:2024-05-01T12:01:00.000+00:00
#EXTINF:1.967,title
seg12.m4s
";

#[test]
fn parses_a_media_playlist() {
    let pl = parse_media(MEDIA).unwrap();
    assert_eq!(pl.version, Some(7));
    assert_eq!(pl.target_duration, 2);
    assert_eq!(pl.media_sequence(), 10);
    assert_eq!(pl.discontinuity_sequence(), 2);
    assert!(pl.independent_segments);
    assert!(!pl.endlist);
    assert_eq!(pl.segments.len(), 3);
    let s: Vec<_> = pl
        .segments
        .iter()
        .map(|s| {
            (
                s.msn,
                s.dsn,
                s.uri.as_str(),
                s.discontinuity,
                s.map_tag_here,
            )
        })
        .collect();
    assert_eq!(
        s,
        vec![
            (10, 2, "seg10.m4s", false, true),
            (11, 2, "seg11.m4s", false, false),
            (12, 3, "seg12.m4s", true, true)
        ]
    );
    assert_eq!(pl.segments[1].map.as_ref().unwrap().uri, "init-1.mp4");
    assert_eq!(pl.segments[2].map.as_ref().unwrap().uri, "init-2.mp4");
    assert_eq!(pl.segments[2].title, "title");
    assert_eq!(pl.segments[0].pdt_ms, Some(1714564800000));
    assert_eq!(pl.segments[1].pdt_ms, None);
    assert_eq!(pl.segments[2].pdt_ms, Some(1714564860000));
    assert_eq!(pl.map_uris(), vec!["init-1.mp4", "init-2.mp4"]);
    assert!((pl.total_duration() - 5.967).abs() < 1e-9);
    assert_eq!(media_playlist_problems(&pl, 6), Vec::<String>::new());
    assert_eq!(media_playlist_problems(&pl, 2).len(), 1);
    // CRLF line endings are fine.
    let crlf = MEDIA.replace('\n', "\r\n");
    assert_eq!(parse_media(&crlf).unwrap().segments.len(), 3);
    assert!(matches!(
        hls::parse(MEDIA).unwrap(),
        hls::Playlist::Media(_)
    ));
}

#[test]
fn rejects_broken_media_playlists() {
    let bad = [
        ("no header", MEDIA.replacen("#EXTM3U\n", "", 1)),
        (
            "no target duration",
            MEDIA.replace("#EXT-X-TARGETDURATION:2\n", ""),
        ),
        (
            "float target duration",
            MEDIA.replace("TARGETDURATION:2", "TARGETDURATION:2.0"),
        ),
        (
            "EXTINF without comma",
            MEDIA.replace("#EXTINF:2.000,\nseg10", "#EXTINF:2.000\nseg10"),
        ),
        (
            "EXTINF not a number",
            MEDIA.replace("#EXTINF:2.000,\nseg10", "#EXTINF:abc,\nseg10"),
        ),
        (
            "URI without EXTINF",
            MEDIA.replace("#EXTINF:2.000,\nseg11", "seg11"),
        ),
        ("EXTINF without URI", format!("{MEDIA}#EXTINF:2.0,\n")),
        (
            "MAP without URI",
            MEDIA.replace("URI=\"init-1.mp4\"", "BYTERANGE=\"1@0\""),
        ),
        (
            "MAP with unquoted URI",
            MEDIA.replace("URI=\"init-1.mp4\"", "URI=init-1.mp4"),
        ),
        (
            "media sequence after a segment",
            MEDIA.replace("#EXT-X-MEDIA-SEQUENCE:10\n", "") + "#EXT-X-MEDIA-SEQUENCE:10\n",
        ),
        (
            "bad date",
            MEDIA.replace("2024-05-01T12:00:00.000Z", "yesterday"),
        ),
        (
            "master tag",
            MEDIA.replace(
                "#EXT-X-INDEPENDENT-SEGMENTS",
                "#EXT-X-STREAM-INF:BANDWIDTH=1",
            ),
        ),
        (
            "segment after ENDLIST",
            MEDIA.replace("#EXTINF:1.967", "#EXT-X-ENDLIST\n#EXTINF:1.967"),
        ),
        (
            "two versions",
            MEDIA.replace("#EXT-X-VERSION:7", "#EXT-X-VERSION:7\n#EXT-X-VERSION:7"),
        ),
        ("BOM", format!("\u{feff}{MEDIA}")),
    ];
    for (what, text) in bad {
        let r = parse_media(&text);
        assert!(r.is_err(), "{what}: accepted:\n{text}");
        eprintln!("{what}: {}", r.unwrap_err());
    }
}

#[test]
fn finds_rule_violations() {
    let p = |t: &str| media_playlist_problems(&parse_media(t).unwrap(), 6);
    assert!(p(&MEDIA.replace("#EXT-X-VERSION:7", "#EXT-X-VERSION:3"))
        .iter()
        .any(|e| e.contains("VERSION")));
    assert!(
        p(&MEDIA.replace("#EXTINF:2.000,\nseg10", "#EXTINF:2.6,\nseg10"))
            .iter()
            .any(|e| e.contains("TARGETDURATION"))
    );
    assert!(p(&MEDIA.replace("#EXT-X-MEDIA-SEQUENCE:10\n", ""))
        .iter()
        .any(|e| e.contains("MEDIA-SEQUENCE")));
    assert!(p(&MEDIA.replace("seg11.m4s", "/abs/seg11.m4s"))
        .iter()
        .any(|e| e.contains("relative")));
    assert!(p(&MEDIA.replace("seg11.m4s", "seg11.ts"))
        .iter()
        .any(|e| e.contains(".m4s")));
    assert!(
        p(&MEDIA.replace("12:01:00.000+00:00", "11:00:00.000+00:00"))
            .iter()
            .any(|e| e.contains("PROGRAM-DATE-TIME"))
    );
    let no_map = MEDIA.replace("#EXT-X-MAP:URI=\"init-1.mp4\"\n", "");
    assert!(p(&no_map).iter().any(|e| e.contains("EXT-X-MAP")));
}

#[test]
fn parses_a_master_playlist() {
    let text = "#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-INDEPENDENT-SEGMENTS\n\
        #EXT-X-STREAM-INF:BANDWIDTH=2500000,AVERAGE-BANDWIDTH=2000000,CODECS=\"avc1.64001f,mp4a.40.2\",RESOLUTION=1280x720,FRAME-RATE=30.000\n\
        source/index.m3u8\n\
        #EXT-X-STREAM-INF:BANDWIDTH=800000,CODECS=\"avc1.4d401e,mp4a.40.2\",RESOLUTION=640x360,FRAME-RATE=30\n\
        360p/index.m3u8?x=1\n";
    let m = parse_master(text).unwrap();
    assert_eq!(m.version, Some(6));
    assert_eq!(m.variants.len(), 2);
    let v = &m.variants[0];
    assert_eq!(v.bandwidth(), Some(2500000));
    assert_eq!(v.average_bandwidth(), Some(2000000));
    assert_eq!(v.resolution(), Some((1280, 720)));
    assert_eq!(v.frame_rate(), Some(30.0));
    assert_eq!(v.codecs().unwrap(), vec!["avc1.64001f", "mp4a.40.2"]);
    assert_eq!(m.variants[1].uri, "360p/index.m3u8?x=1");
    assert!(matches!(
        hls::parse(text).unwrap(),
        hls::Playlist::Master(_)
    ));

    for (what, bad) in [
        ("no BANDWIDTH", text.replace("BANDWIDTH=800000,", "")),
        (
            "unquoted CODECS",
            text.replace("CODECS=\"avc1.4d401e,mp4a.40.2\"", "CODECS=avc1.4d401e"),
        ),
        ("bad RESOLUTION", text.replace("640x360", "640*360")),
        ("no URI", text.replace("360p/index.m3u8?x=1\n", "")),
        (
            "segment tag",
            text.replace("#EXT-X-INDEPENDENT-SEGMENTS", "#EXTINF:2,"),
        ),
        (
            "duplicate attribute",
            text.replace("BANDWIDTH=800000,", "BANDWIDTH=800000,BANDWIDTH=1,"),
        ),
        (
            "lowercase attribute",
            text.replace("BANDWIDTH=800000,", "bandwidth=800000,BANDWIDTH=1,"),
        ),
    ] {
        assert!(parse_master(&bad).is_err(), "{what}: accepted:\n{bad}");
    }
}

#[test]
fn resolves_relative_uris() {
    let base = "http://127.0.0.1:8080/hls/stream.m3u8";
    assert_eq!(
        resolve(base, "source/index.m3u8"),
        "http://127.0.0.1:8080/hls/source/index.m3u8"
    );
    assert_eq!(
        resolve(base, "./a.m3u8"),
        "http://127.0.0.1:8080/hls/a.m3u8"
    );
    assert_eq!(resolve(base, "../x/a.m4s"), "http://127.0.0.1:8080/x/a.m4s");
    assert_eq!(
        resolve(base, "../../../x/a.m4s"),
        "http://127.0.0.1:8080/x/a.m4s"
    );
    assert_eq!(
        resolve(base, "/abs/a.m4s"),
        "http://127.0.0.1:8080/abs/a.m4s"
    );
    assert_eq!(
        resolve(base, "a.m4s?t=1"),
        "http://127.0.0.1:8080/hls/a.m4s?t=1"
    );
    assert_eq!(
        resolve(base, "//cdn.example/a.m4s"),
        "http://cdn.example/a.m4s"
    );
    assert_eq!(
        resolve(base, "https://cdn.example/p/../a.m4s"),
        "https://cdn.example/a.m4s"
    );
    assert_eq!(
        resolve("http://h/hls/v/index.m3u8?token=1", "init.mp4"),
        "http://h/hls/v/init.mp4"
    );
    assert_eq!(
        resolve("http://h/hls/v/", "init.mp4"),
        "http://h/hls/v/init.mp4"
    );
    assert_eq!(resolve("http://h", "init.mp4"), "http://h/init.mp4");
    assert_eq!(resolve("http://h/a/b", "?q"), "http://h/a/b?q");
    assert_eq!(resolve("http://h/a/b", "c#frag"), "http://h/a/c");
    // RFC 3986 §5.4.1 examples.
    let b = "http://a/b/c/d;p?q";
    for (r, want) in [
        ("g", "http://a/b/c/g"),
        ("./g", "http://a/b/c/g"),
        ("g/", "http://a/b/c/g/"),
        ("/g", "http://a/g"),
        ("//g", "http://g"),
        ("?y", "http://a/b/c/d;p?y"),
        ("g?y", "http://a/b/c/g?y"),
        (";x", "http://a/b/c/;x"),
        ("", "http://a/b/c/d;p?q"),
        (".", "http://a/b/c/"),
        ("./", "http://a/b/c/"),
        ("..", "http://a/b/"),
        ("../", "http://a/b/"),
        ("../g", "http://a/b/g"),
        ("../..", "http://a/"),
        ("../../g", "http://a/g"),
    ] {
        assert_eq!(resolve(b, r), want, "resolve({b:?}, {r:?})");
    }
}

#[test]
fn parses_date_times() {
    assert_eq!(parse_date_time("1970-01-01T00:00:00Z", true), Ok(0));
    assert_eq!(
        parse_date_time("2000-03-01T00:00:00.5Z", true),
        Ok(951868800500)
    );
    assert_eq!(
        parse_date_time("2024-05-01T14:00:00.123+02:00", true),
        Ok(1714564800123)
    );
    assert_eq!(
        parse_date_time("2024-05-01T07:00:00.000-05:00", true),
        Ok(1714564800000)
    );
    assert_eq!(
        parse_date_time("2024-05-01T12:00:00.000+0000", false),
        Ok(1714564800000)
    );
    assert!(parse_date_time("2024-05-01T12:00:00.000+0000", true).is_err());
    assert!(parse_date_time("2024-05-01 12:00:00Z", true).is_err());
    assert!(parse_date_time("2024-05-01T12:00:00", true).is_err());
    assert!(parse_date_time("2024-13-01T12:00:00Z", true).is_err());
    assert!(parse_date_time("1714564800", true).is_err());
}

fn fetched(text: &str) -> Fetched {
    Fetched {
        url: "http://x/v.m3u8".into(),
        text: text.into(),
        pl: parse_media(text).unwrap(),
        at: Instant::now(),
    }
}

fn live(ms: u64, segs: &[(u64, bool)], ds: u64) -> String {
    let mut t =
        format!("#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:{ms}\n");
    if ds > 0 {
        t.push_str(&format!("#EXT-X-DISCONTINUITY-SEQUENCE:{ds}\n"));
    }
    t.push_str(if ds > 0 {
        "#EXT-X-MAP:URI=\"init1.mp4\"\n"
    } else {
        "#EXT-X-MAP:URI=\"init0.mp4\"\n"
    });
    for &(n, disc) in segs {
        if disc {
            t.push_str("#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI=\"init1.mp4\"\n");
        }
        t.push_str(&format!("#EXTINF:2.0,\ns{n}.m4s\n"));
    }
    t
}

#[test]
fn tracker_accepts_a_sliding_window_and_catches_regressions() {
    let mut t = Tracker::new();
    assert_eq!(
        t.observe(fetched(&live(0, &[(0, false), (1, false)], 0)))
            .unwrap(),
        vec![]
    );
    assert_eq!(
        t.observe(fetched(&live(0, &[(0, false), (1, false), (2, false)], 0)))
            .unwrap(),
        vec![]
    );
    assert_eq!(
        t.observe(fetched(&live(2, &[(2, false), (3, true), (4, false)], 0)))
            .unwrap(),
        vec![(0, "s0.m4s".to_string()), (1, "s1.m4s".to_string())]
    );
    // The discontinuity leaves: the sequence must go to 1.
    t.observe(fetched(&live(4, &[(4, false), (5, false)], 1)))
        .unwrap();

    // Going backwards.
    let mut t = Tracker::new();
    t.observe(fetched(&live(3, &[(3, false), (4, false)], 0)))
        .unwrap();
    assert!(t
        .observe(fetched(&live(2, &[(2, false), (3, false), (4, false)], 0)))
        .is_err());
    // Renumbering (a media sequence reset on reconnect).
    let mut t = Tracker::new();
    t.observe(fetched(&live(3, &[(3, false), (4, false)], 0)))
        .unwrap();
    let renum = live(0, &[(3, false), (4, false)], 0);
    assert!(t.observe(fetched(&renum)).is_err());
    // A discontinuity left without incrementing EXT-X-DISCONTINUITY-SEQUENCE.
    let mut t = Tracker::new();
    t.observe(fetched(&live(2, &[(2, true), (3, false)], 0)))
        .unwrap();
    assert!(t
        .observe(fetched(&live(3, &[(3, false), (4, false)], 0)))
        .is_err());
    // Changes after ENDLIST.
    let mut t = Tracker::new();
    t.observe(fetched(&format!(
        "{}#EXT-X-ENDLIST\n",
        live(0, &[(0, false)], 0)
    )))
    .unwrap();
    assert!(t
        .observe(fetched(&live(0, &[(0, false), (1, false)], 0)))
        .is_err());
}
