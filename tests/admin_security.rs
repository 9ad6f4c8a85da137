//! The admin API attacked the way issue 13 found it open, from loopback, through the real
//! `selfcast` binary:
//!
//! - guessing the password: after the free failures an address must wait, then is locked out;
//!   a refused attempt gets 429 with `Retry-After` and its password is not checked (the right
//!   one is refused too); another address is unaffected; the right password forgives; the same
//!   stale password sent again and again is not counted;
//! - cross-site request forgery: a state-changing request without the JSON content type gets
//!   415, one that says it comes from another site (`Origin`, `Sec-Fetch-Site`) 403, and neither
//!   has an effect; scripts (no `Origin`) and the server's own pages keep working.
//!
//! Requests are raw HTTP/1.1 from a socket bound to a chosen loopback address (127.0.0.1 or
//! 127.0.0.2), so that two "addresses" can attack and sign in side by side. Nothing is timed:
//! the one wait (a delay passing) polls with a deadline.

mod common;

use std::net::Ipv4Addr;
use std::time::Duration;

use serde_json::json;

use common::raw_http::{basic, send, Reply};
use common::{poll_until, Server, ServerOptions};

const PASSWORD: &str = "admin-security-test-pw-13";
const ATTACKER: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 1);
const ELSEWHERE: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);

/// A server with the admin password and these `[admin]` keys.
fn start(admin_toml: &str) -> Server {
    Server::start(ServerOptions {
        extra_toml: format!("\n[admin]\npassword = \"{PASSWORD}\"\n{admin_toml}\n"),
        ..ServerOptions::default()
    })
}

/// `GET /api/admin/chat/clients` from `from` with this password.
fn sign_in(server: &Server, from: Ipv4Addr, password: &str) -> Reply {
    let auth = basic("admin", password);
    send(
        server,
        from,
        "GET",
        "/api/admin/chat/clients",
        &[("Authorization", &auth)],
        "",
    )
}

/// A 429's promises: `Retry-After` in whole seconds, and why in words.
fn assert_refused_unchecked(reply: &Reply, locked_out: bool, what: &str) -> u64 {
    assert_eq!(reply.status, 429, "{what}: {reply:?}");
    let retry_after: u64 = reply
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{what}: no Retry-After in seconds: {reply:?}"));
    assert!(retry_after >= 1, "{what}: Retry-After {retry_after}");
    let body = reply.json();
    let why = body["error"].as_str().unwrap_or_default();
    assert!(
        why.contains("too many wrong passwords"),
        "{what}: the body says why: {body}"
    );
    assert_eq!(body["retryAfterSeconds"], retry_after, "{what}: {body}");
    assert_eq!(body["lockedOut"], locked_out, "{what}: {body}");
    retry_after
}

#[test]
fn sixty_wrong_passwords_are_refused_unchecked_after_the_free_ones() {
    // A delay far longer than the test: every attempt after the first delayed one is refused.
    let server = start("free_failures = 5\nfirst_delay_seconds = 600\nmax_delay_seconds = 600");
    let mut statuses = Vec::new();
    for guess in 0..60 {
        let reply = sign_in(&server, ATTACKER, &format!("guess-{guess}"));
        if reply.status == 429 {
            assert_refused_unchecked(&reply, false, &format!("guess {guess}"));
            assert!(reply.json()["error"]
                .as_str()
                .unwrap()
                .contains("not checked"));
        }
        statuses.push(reply.status);
    }
    // 5 free failures, and the 6th, which was checked and starts the delay.
    assert_eq!(statuses[..6], [401; 6], "{statuses:?}");
    assert!(
        statuses[6..].iter().all(|&status| status == 429),
        "every guess during the delay is refused: {statuses:?}"
    );

    let right = sign_in(&server, ATTACKER, PASSWORD);
    assert_refused_unchecked(&right, false, "the right password during the delay");
    let elsewhere = sign_in(&server, ELSEWHERE, PASSWORD);
    assert_eq!(elsewhere.status, 200, "another address: {elsewhere:?}");
    assert_eq!(
        sign_in(&server, ELSEWHERE, "a typo").status,
        401,
        "another address has its own free failures"
    );
}

#[test]
fn the_right_password_after_the_delay_is_accepted_and_forgives() {
    let server = start("free_failures = 2\nfirst_delay_seconds = 3\nlockout_failures = 4");
    for guess in ["first", "second", "third"] {
        assert_eq!(sign_in(&server, ATTACKER, guess).status, 401, "{guess}");
    }
    let during = sign_in(&server, ATTACKER, PASSWORD);
    let retry_after = assert_refused_unchecked(&during, false, "the right password too soon");
    assert!(
        retry_after <= 3,
        "Retry-After {retry_after} for a 3 s delay"
    );

    // Polling during the delay is refused and does not make it longer.
    let mut refused = 0;
    let accepted = poll_until(Duration::from_secs(30), Duration::from_millis(200), || {
        let reply = sign_in(&server, ATTACKER, PASSWORD);
        if reply.status == 429 {
            refused += 1;
            None
        } else {
            Some(reply)
        }
    })
    .expect("the right password is accepted once the delay has passed");
    assert_eq!(accepted.status, 200, "{accepted:?}");
    assert!(accepted.json().is_array(), "{accepted:?}");

    // Forgiven: the free failures are free again (without it, the next would lock out).
    for guess in ["fourth", "fifth"] {
        assert_eq!(sign_in(&server, ATTACKER, guess).status, 401, "{guess}");
    }
    assert_eq!(
        sign_in(&server, ATTACKER, PASSWORD).status,
        200,
        "two free failures after forgiveness ({refused} polls were refused during the delay)"
    );
}

#[test]
fn repeated_failures_lock_the_address_out_and_the_owner_is_told() {
    let server = start("free_failures = 2\nlockout_failures = 3\nlockout_minutes = 15");
    for guess in ["one", "two", "three"] {
        assert_eq!(sign_in(&server, ATTACKER, guess).status, 401, "{guess}");
    }
    let right = sign_in(&server, ATTACKER, PASSWORD);
    let retry_after = assert_refused_unchecked(&right, true, "the right password, locked out");
    assert!(
        retry_after > 14 * 60,
        "locked out for 15 minutes: {retry_after}"
    );
    let why = right.json()["error"].as_str().unwrap().to_string();
    assert!(
        why.contains("locked out") && why.contains("restarting selfcast"),
        "{why}"
    );
    let logged = poll_until(Duration::from_secs(10), Duration::from_millis(100), || {
        let log = server.stderr() + &server.stdout();
        log.lines()
            .find(|line| line.contains("locked out") && line.contains("127.0.0.1"))
            .map(str::to_string)
    })
    .expect("the lock-out is logged");
    assert!(
        logged.contains("restart selfcast"),
        "how to lift it: {logged}"
    );
    assert!(!logged.contains(PASSWORD), "{logged}");
    assert_eq!(sign_in(&server, ELSEWHERE, PASSWORD).status, 200);
}

#[test]
fn the_same_stale_password_again_and_again_is_not_counted() {
    let server = start("free_failures = 2");
    for _ in 0..30 {
        assert_eq!(
            sign_in(&server, ATTACKER, "last-years-password").status,
            401
        );
    }
    assert_eq!(
        sign_in(&server, ATTACKER, PASSWORD).status,
        200,
        "a script polling with an old password does not lock its owner out"
    );
}

#[test]
fn cross_site_and_non_json_requests_change_nothing() {
    let server = start("");
    let auth = basic("admin", PASSWORD);
    let own_origin = format!("http://127.0.0.1:{}", server.http_port);
    let other_port = format!("http://127.0.0.1:{}", server.http_port + 1);
    let json_type = ("Content-Type", "application/json");
    let cases: Vec<(Vec<(&str, &str)>, u16)> = vec![
        (vec![], 415),
        (vec![("Content-Type", "text/plain")], 415),
        (vec![("Content-Type", "text/plain; charset=utf-8")], 415),
        (
            vec![("Content-Type", "application/x-www-form-urlencoded")],
            415,
        ),
        (
            vec![("Content-Type", "multipart/form-data; boundary=x")],
            415,
        ),
        (vec![("Content-Type", "application/vnd.api+json")], 415),
        (vec![json_type, ("Origin", "http://evil.example")], 403),
        (vec![json_type, ("Origin", &other_port)], 403),
        (vec![json_type, ("Origin", "null")], 403),
        (vec![json_type, ("Sec-Fetch-Site", "cross-site")], 403),
        (vec![json_type, ("Sec-Fetch-Site", "same-site")], 403),
        (
            vec![
                ("Origin", "http://evil.example"),
                ("Sec-Fetch-Site", "cross-site"),
            ],
            403,
        ),
        (vec![json_type], 200),
        (
            vec![("Content-Type", "application/json; charset=utf-8")],
            200,
        ),
        (vec![json_type, ("Origin", &own_origin)], 200),
        (
            vec![
                json_type,
                ("Origin", &own_origin),
                ("Sec-Fetch-Site", "same-origin"),
            ],
            200,
        ),
        (vec![json_type, ("Sec-Fetch-Site", "none")], 200),
    ];
    let mut banned = Vec::new();
    for (index, (headers, expected)) in cases.iter().enumerate() {
        let address = format!("203.0.113.{index}");
        let mut with_auth = headers.clone();
        with_auth.push(("Authorization", &auth));
        let body = json!({ "value": address }).to_string();
        let reply = send(
            &server,
            ATTACKER,
            "POST",
            "/api/admin/chat/users/ipbans/create",
            &with_auth,
            &body,
        );
        assert_eq!(reply.status, *expected, "{headers:?}: {reply:?}");
        let why = reply.json()["error"].as_str().map(str::to_string);
        match expected {
            415 => assert!(why.unwrap().contains("application/json"), "{reply:?}"),
            403 => assert!(why.unwrap().contains("another"), "{reply:?}"),
            _ => banned.push(address),
        }
    }
    // A cross-site request is refused before its password is checked, and not counted.
    for guess in 0..10 {
        let wrong = basic("admin", &format!("csrf-guess-{guess}"));
        let reply = send(
            &server,
            ATTACKER,
            "POST",
            "/api/admin/chat/send",
            &[
                json_type,
                ("Origin", "http://evil.example"),
                ("Authorization", &wrong),
            ],
            r#"{"body":"forged"}"#,
        );
        assert_eq!(reply.status, 403, "{reply:?}");
    }
    let forged = send(
        &server,
        ATTACKER,
        "POST",
        "/api/admin/chat/send",
        &[("Authorization", &auth)],
        r#"{"body":"forged without a type"}"#,
    );
    assert_eq!(forged.status, 415, "{forged:?}");

    let listed = send(
        &server,
        ATTACKER,
        "GET",
        "/api/admin/chat/users/ipbans",
        &[("Authorization", &auth)],
        "",
    );
    assert_eq!(listed.status, 200, "the password still works: {listed:?}");
    let listed: Vec<String> = listed
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|ban| ban["ipAddress"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(listed, banned, "only the accepted requests banned anyone");
    let history = common::http_get(&server.url("/api/chat")).unwrap().text();
    assert!(!history.contains("forged"), "{history}");
}
