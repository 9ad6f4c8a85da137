//! The admin console's server side through the real `selfcast` binary (issue 14): signing in
//! with a session cookie, the CSRF token every change needs, signing out, the wrong-password
//! limit shared with Basic auth, changing the password, and the live page settings: applied at
//! once, refused with the field at fault, kept across a restart, and a torn settings file
//! reported with the previous settings kept. The page itself is tested in a browser by
//! tests/browser/admin_console.mjs.

mod common;

use std::net::Ipv4Addr;
use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};

use common::raw_http::{basic_sign_in, send, Reply};
use common::{poll_until, Server, ServerOptions};

const PASSWORD: &str = "admin-console-test-pw-14";
const HERE: Ipv4Addr = Ipv4Addr::LOCALHOST;

fn start_with(data_dir: Option<&Path>, extra_toml: &str) -> Server {
    Server::start(ServerOptions {
        data_dir: data_dir.map(Path::to_owned),
        title: "Config title".into(),
        extra_toml: extra_toml.into(),
        ..ServerOptions::default()
    })
}

/// A server whose admin password is `[admin] password`.
fn start() -> Server {
    start_with(None, &format!("\n[admin]\npassword = \"{PASSWORD}\"\n"))
}

/// How the console's script sends a request: same-origin fetch, JSON.
fn console(
    server: &Server,
    method: &str,
    path: &str,
    cookie: Option<&str>,
    csrf: Option<&str>,
    body: &Value,
) -> Reply {
    let origin = format!("http://127.0.0.1:{}", server.http_port);
    let cookie = cookie.map(|token| format!("selfcast_admin={token}"));
    let mut headers = vec![
        ("Sec-Fetch-Site", "same-origin"),
        ("Sec-Fetch-Mode", "cors"),
        ("Origin", origin.as_str()),
        ("Content-Type", "application/json"),
    ];
    if let Some(cookie) = &cookie {
        headers.push(("Cookie", cookie));
    }
    if let Some(csrf) = csrf {
        headers.push(("X-CSRF-Token", csrf));
    }
    let body = if method == "GET" {
        String::new()
    } else {
        body.to_string()
    };
    send(server, HERE, method, path, &headers, &body)
}

/// A signed-in console: the session token (from `Set-Cookie`) and its CSRF token.
struct Signed {
    token: String,
    csrf: String,
}

/// The console's sign-in form: `POST /api/admin/session` with `password`.
fn try_sign_in(server: &Server, password: &str) -> Reply {
    console(
        server,
        "POST",
        "/api/admin/session",
        None,
        None,
        &json!({ "password": password }),
    )
}

fn sign_in(server: &Server, password: &str) -> Signed {
    let reply = try_sign_in(server, password);
    assert_eq!(reply.status, 200, "sign in: {reply:?}");
    let cookie = reply
        .header("set-cookie")
        .expect("a session cookie")
        .to_owned();
    let token = cookie
        .strip_prefix("selfcast_admin=")
        .and_then(|rest| rest.split(';').next())
        .expect("selfcast_admin=<token>")
        .to_owned();
    Signed {
        token,
        csrf: reply.json()["csrfToken"]
            .as_str()
            .expect("csrfToken")
            .to_owned(),
    }
}

impl Signed {
    fn get(&self, server: &Server, path: &str) -> Reply {
        console(server, "GET", path, Some(&self.token), None, &Value::Null)
    }
    fn post(&self, server: &Server, path: &str, body: Value) -> Reply {
        console(
            server,
            "POST",
            path,
            Some(&self.token),
            Some(&self.csrf),
            &body,
        )
    }
}

#[test]
fn the_console_signs_in_with_a_cookie_and_every_change_needs_its_csrf_token() {
    let server = start();

    let wrong = try_sign_in(&server, "not-the-password");
    assert_eq!(wrong.status, 401, "{wrong:?}");
    assert_eq!(
        wrong.header("www-authenticate"),
        None,
        "no browser dialog: {wrong:?}"
    );
    assert_eq!(wrong.header("set-cookie"), None);
    assert_eq!(wrong.json()["error"], "wrong password");

    let reply = try_sign_in(&server, PASSWORD);
    assert_eq!(reply.status, 200, "{reply:?}");
    let cookie = reply.header("set-cookie").unwrap();
    for part in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=604800"] {
        assert!(cookie.contains(part), "{part} in {cookie}");
    }
    assert!(
        !cookie.contains("Secure"),
        "served over plain HTTP: {cookie}"
    );
    let signed = sign_in(&server, PASSWORD);

    let session = signed.get(&server, "/api/admin/session");
    assert_eq!(session.status, 200, "{session:?}");
    assert_eq!(
        session.header("cache-control"),
        Some("no-store"),
        "it holds the CSRF token"
    );
    assert_eq!(session.json()["csrfToken"], signed.csrf.as_str());
    assert_eq!(session.json()["passwordFromConfig"], true);
    assert_eq!(signed.get(&server, "/api/admin/chat/clients").status, 200);

    // A change with the cookie alone (what a forged request can do at most), or a wrong token.
    let send_body = json!({ "body": "hello from the console" });
    for csrf in [None, Some(""), Some("a-wrong-token")] {
        let reply = console(
            &server,
            "POST",
            "/api/admin/chat/send",
            Some(&signed.token),
            csrf,
            &send_body,
        );
        assert_eq!(reply.status, 403, "CSRF token {csrf:?}: {reply:?}");
        assert!(reply.json()["error"]
            .as_str()
            .unwrap()
            .contains("X-CSRF-Token"));
    }
    assert_eq!(
        http_json(&server, "/api/chat").as_array().unwrap().len(),
        0,
        "nothing was posted"
    );
    let posted = signed.post(&server, "/api/admin/chat/send", send_body);
    assert_eq!(posted.status, 200, "{posted:?}");
    assert_eq!(http_json(&server, "/api/chat").as_array().unwrap().len(), 1);

    // A made-up session is no session.
    let forged = console(
        &server,
        "GET",
        "/api/admin/session",
        Some("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
        None,
        &Value::Null,
    );
    assert_eq!(forged.status, 401, "{forged:?}");

    // Signing out ends the session on the server, not only in the browser.
    let out = signed.post(&server, "/api/admin/session/end", json!({}));
    assert_eq!(out.status, 200, "{out:?}");
    assert!(out.header("set-cookie").unwrap().contains("Max-Age=0"));
    let after = signed.get(&server, "/api/admin/session");
    assert_eq!(after.status, 401, "{after:?}");
    assert_eq!(
        after.header("www-authenticate"),
        None,
        "the console's cookie: no dialog"
    );
    // The console's probe never asks for Basic auth; any other path without a session cookie
    // does (a browser with cached Basic credentials then sends them).
    let probe = send(&server, HERE, "GET", "/api/admin/session", &[], "");
    assert_eq!(
        (probe.status, probe.header("www-authenticate")),
        (401, None)
    );
    let navigated = send(&server, HERE, "GET", "/api/admin/chat/clients", &[], "");
    assert_eq!(navigated.status, 401);
    assert!(
        navigated.header("www-authenticate").is_some(),
        "{navigated:?}"
    );
}

#[test]
fn a_console_on_https_gets_a_secure_cookie() {
    let server = start();
    let origin = format!("https://127.0.0.1:{}", server.http_port);
    let reply = send(
        &server,
        HERE,
        "POST",
        "/api/admin/session",
        &[("Origin", &origin), ("Content-Type", "application/json")],
        &json!({ "password": PASSWORD }).to_string(),
    );
    assert_eq!(reply.status, 200, "{reply:?}");
    assert!(
        reply.header("set-cookie").unwrap().ends_with("; Secure"),
        "{reply:?}"
    );
}

#[test]
fn wrong_console_passwords_count_with_basic_auth_ones() {
    let server = start_with(
        None,
        &format!(
            "\n[admin]\npassword = \"{PASSWORD}\"\nfree_failures = 2\nfirst_delay_seconds = 600\nmax_delay_seconds = 600\n"
        ),
    );
    // Two free failures and a third, checked, that starts the wait: one through Basic auth.
    assert_eq!(try_sign_in(&server, "guess-1").status, 401);
    assert_eq!(basic_sign_in(&server, HERE, "guess-2").status, 401);
    assert_eq!(try_sign_in(&server, "guess-3").status, 401);
    // From now on the address waits: the console's form, with the right password, is refused
    // unchecked, and so is Basic auth.
    let refused = try_sign_in(&server, PASSWORD);
    assert_eq!(refused.status, 429, "{refused:?}");
    assert!(refused.header("retry-after").is_some());
    assert!(refused.json()["error"]
        .as_str()
        .unwrap()
        .contains("too many wrong passwords"));
    assert_eq!(refused.header("set-cookie"), None);
    assert_eq!(basic_sign_in(&server, HERE, PASSWORD).status, 429);
}

#[test]
fn a_password_change_ends_the_other_sessions_and_outlives_a_restart() {
    let data = tempfile::tempdir().unwrap();
    let server = start_with(Some(data.path()), "");
    let first = std::fs::read_to_string(data.path().join("admin_password")).unwrap();
    let first = first.trim();
    let mine = sign_in(&server, first);
    let other = sign_in(&server, first);
    assert_eq!(
        mine.get(&server, "/api/admin/session").json()["passwordFromConfig"],
        false
    );

    let change = |old: &str, new: &str| {
        mine.post(
            &server,
            "/api/admin/password",
            json!({ "oldPassword": old, "newPassword": new }),
        )
    };
    let wrong_old = change("not-the-old-one", "a-new-password");
    assert_eq!(
        (wrong_old.status, wrong_old.json()["field"].clone()),
        (400, json!("oldPassword"))
    );
    let weak = change(first, "short");
    assert_eq!(
        (weak.status, weak.json()["field"].clone()),
        (400, json!("newPassword"))
    );
    assert_eq!(
        other.get(&server, "/api/admin/session").status,
        200,
        "nothing changed yet"
    );

    let changed = change(first, "the-new-password-14");
    assert_eq!(changed.status, 200, "{changed:?}");
    assert_eq!(
        mine.get(&server, "/api/admin/session").status,
        200,
        "this session stays"
    );
    assert_eq!(
        other.get(&server, "/api/admin/session").status,
        401,
        "the other one ended"
    );
    assert_eq!(
        basic_sign_in(&server, HERE, "the-new-password-14").status,
        200
    );
    drop(server);

    let server = start_with(Some(data.path()), "");
    sign_in(&server, "the-new-password-14");
    let reply = try_sign_in(&server, first);
    assert_eq!(reply.status, 401, "the old password is gone");
    drop(server);

    // With [admin] password in config.toml, that one is the password and cannot be changed.
    let server = start();
    let signed = sign_in(&server, PASSWORD);
    let reply = signed.post(
        &server,
        "/api/admin/password",
        json!({ "oldPassword": PASSWORD, "newPassword": "another-password" }),
    );
    assert_eq!(reply.status, 409, "{reply:?}");
    assert!(reply.json()["error"]
        .as_str()
        .unwrap()
        .contains("config.toml"));
}

fn http_json(server: &Server, path: &str) -> Value {
    let reply = send(server, HERE, "GET", path, &[], "");
    assert_eq!(reply.status, 200, "GET {path}: {reply:?}");
    reply.json()
}

#[test]
fn page_settings_apply_at_once_are_checked_and_outlive_a_restart() {
    let data = tempfile::tempdir().unwrap();
    let config = format!(
        "\n[admin]\npassword = \"{PASSWORD}\"\n\n[page]\nsummary = \"From the config file\"\n"
    );
    let server = start_with(Some(data.path()), &config);
    let signed = sign_in(&server, PASSWORD);
    let before = http_json(&server, "/api/status");
    assert_eq!(before["streamTitle"], "Config title");
    let revision = before["pageRevision"].as_u64().expect("pageRevision");

    let settings = signed.get(&server, "/api/admin/settings").json();
    assert_eq!(
        settings["page"]["values"]["summary"],
        "From the config file"
    );
    assert_eq!(settings["page"]["sources"]["summary"], "config");
    assert_eq!(settings["page"]["sources"]["tags"], "default");
    assert_eq!(settings["problems"], json!([]));

    let change = json!({
        "streamTitle": "Live from the console",
        "summary": "Come and see https://example.com/schedule",
        "tags": ["music", " live "],
        "offlineMessage": "Back on Friday at 8",
        "socialLinks": [{"platform": "Mastodon", "url": "https://social.example/@me"}],
        "customCss": "h1 { color: rebeccapurple }",
    });
    let reply = signed.post(&server, "/api/admin/settings/page", change);
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(
        reply.json()["page"]["values"]["tags"],
        json!(["music", "live"])
    );
    assert_eq!(reply.json()["page"]["sources"]["streamTitle"], "console");

    let status = http_json(&server, "/api/status");
    assert_eq!(status["streamTitle"], "Live from the console");
    assert!(status["pageRevision"].as_u64().unwrap() > revision);
    let page = http_json(&server, "/api/config");
    assert_eq!(page["summary"], "Come and see https://example.com/schedule");
    assert_eq!(page["offlineMessage"], "Back on Friday at 8");
    assert_eq!(
        page["socialHandles"][0]["url"],
        "https://social.example/@me"
    );
    assert_eq!(page["pageRevision"], status["pageRevision"]);
    let css_url = page["customStylesUrl"].as_str().expect("customStylesUrl");
    let css = send(&server, HERE, "GET", css_url, &[], "");
    assert_eq!(css.status, 200);
    assert_eq!(css.header("content-type"), Some("text/css; charset=utf-8"));
    assert_eq!(css.body, "h1 { color: rebeccapurple }");

    // Bad values: the field at fault, and nothing saved (the revision stays).
    let saved_revision = status["pageRevision"].clone();
    for (bad, field) in [
        (
            json!({ "streamTitle": "x".repeat(101) }),
            Some("streamTitle"),
        ),
        (
            json!({ "summary": "ok", "socialLinks": [{"platform": "x", "url": "javascript:alert(1)"}] }),
            Some("socialLinks"),
        ),
        (json!({ "tags": "music,live" }), Some("tags")),
        (json!({ "streamTitle": 7 }), Some("streamTitle")),
        (json!({ "title": "a key that is no setting" }), None),
    ] {
        let reply = signed.post(&server, "/api/admin/settings/page", bad.clone());
        assert_eq!(reply.status, 400, "{bad}: {reply:?}");
        assert!(!reply.json()["error"].as_str().unwrap().is_empty());
        if let Some(field) = field {
            assert_eq!(reply.json()["field"], field, "{bad}: {reply:?}");
        }
    }
    let status = http_json(&server, "/api/status");
    assert_eq!(status["pageRevision"], saved_revision);
    assert_eq!(
        http_json(&server, "/api/config")["summary"],
        "Come and see https://example.com/schedule"
    );
    drop(server);

    let server = start_with(Some(data.path()), &config);
    let signed = sign_in(&server, PASSWORD);
    assert_eq!(
        http_json(&server, "/api/status")["streamTitle"],
        "Live from the console"
    );
    assert_eq!(
        http_json(&server, "/api/status")["pageRevision"],
        saved_revision
    );
    // Reset: back to config.toml's value.
    let reply = signed.post(
        &server,
        "/api/admin/settings/page",
        json!({ "summary": null }),
    );
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(
        reply.json()["page"]["values"]["summary"],
        "From the config file"
    );
    assert_eq!(reply.json()["page"]["sources"]["summary"], "config");
}

#[test]
fn a_torn_settings_file_is_reported_and_the_previous_settings_kept() {
    let data = tempfile::tempdir().unwrap();
    let config = format!("\n[admin]\npassword = \"{PASSWORD}\"\n");
    let server = start_with(Some(data.path()), &config);
    let signed = sign_in(&server, PASSWORD);
    for title in ["First saved title", "Second saved title"] {
        let reply = signed.post(
            &server,
            "/api/admin/settings/page",
            json!({ "streamTitle": title }),
        );
        assert_eq!(reply.status, 200, "{reply:?}");
    }
    drop(server);
    // Cut short, as a full disk or a crash in the middle of someone's editor would leave it.
    let file = data.path().join("settings.json");
    let text = std::fs::read(&file).unwrap();
    std::fs::write(&file, &text[..text.len() / 2]).unwrap();

    let server = start_with(Some(data.path()), &config);
    assert_eq!(
        http_json(&server, "/api/status")["streamTitle"],
        "First saved title"
    );
    let signed = sign_in(&server, PASSWORD);
    let problems = signed.get(&server, "/api/admin/settings").json()["problems"].clone();
    let problems = problems.as_array().unwrap();
    assert!(
        problems
            .iter()
            .any(|p| p.as_str().unwrap().contains("settings.json is broken")),
        "{problems:?}"
    );
    assert!(data.path().join("settings.json.broken").exists());
    let logged = poll_until(Duration::from_secs(5), Duration::from_millis(50), || {
        server
            .stderr()
            .contains("settings.json is broken")
            .then_some(())
    });
    assert!(
        logged.is_some(),
        "the problem is logged:\n{}",
        server.stderr()
    );
}

#[test]
fn a_page_on_another_site_cannot_change_settings_with_the_owners_cookie() {
    let server = start();
    let signed = sign_in(&server, PASSWORD);
    let cookie = format!("selfcast_admin={}", signed.token);
    for (site, origin) in [
        ("cross-site", "http://127.0.0.1:9"),
        ("same-site", "http://localhost:9"),
    ] {
        let reply = send(
            &server,
            HERE,
            "POST",
            "/api/admin/settings/page",
            &[
                ("Sec-Fetch-Site", site),
                ("Origin", origin),
                ("Cookie", &cookie),
                ("X-CSRF-Token", &signed.csrf),
                ("Content-Type", "application/json"),
            ],
            &json!({ "streamTitle": "forged" }).to_string(),
        );
        assert_eq!(reply.status, 403, "{site}: {reply:?}");
    }
    assert_eq!(
        http_json(&server, "/api/status")["streamTitle"],
        "Config title"
    );
}
