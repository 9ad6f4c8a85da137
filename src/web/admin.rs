//! The admin API under `/api/admin/` (docs/API.md): moderation (paths and bodies follow
//! Owncast's admin API where it has one; moderators, timeouts and the moderation view of the
//! messages are in [`moderators`]), the console's account ([`account`]), the live
//! settings ([`settings`]), stream keys ([`stream_keys`]) and the server's health ([`health`]). Before routing, every request passes:
//!
//! 1. unless it is a `GET`, the cross-site check ([`cross_site`]): 403 for a request a page on
//!    another site made the owner's browser send;
//! 2. signing in ([`sign_in`]), except for signing in itself: HTTP Basic auth
//!    `admin:<password>` (for scripts), or the console's session cookie ([`session`]) and, unless
//!    it is a `GET`, the session's CSRF token in `X-CSRF-Token`; 401 without, 429 while the
//!    address has to wait after wrong passwords.
//!
//! Every request that changes something is a `POST` with a JSON body ([`action`]): any other
//! `Content-Type` than `application/json` (a browser can send a cross-site `POST` without a
//! preflight only as a form or with a `text/plain` or absent type) gets 415.

mod account;
mod cross_site;
mod health;
mod images;
mod moderators;
mod password;
mod session;
mod settings;
mod sign_in;
mod stream_keys;

pub use health::{sample_until as sample_health_until, Health};
pub use password::AdminPassword;
pub use session::Sessions;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use warp::http::header::AUTHORIZATION;
use warp::http::{HeaderMap, Method, StatusCode};
use warp::{Filter, Reply};

use super::chat::{error, ip};
use super::chat_moderation::{self as answer, UserEnabled, Visibility};
use super::{Routes, WebState};
use crate::chat::events::{rfc3339, UserJson};
use crate::chat::moderation::Actor;
use cross_site::CrossSite;
use sign_in::SignInError;

/// Request bodies are small JSON objects.
const MAX_BODY: u64 = 16 * 1024;

#[derive(Deserialize)]
struct Value<T> {
    value: T,
}

#[derive(Deserialize)]
struct Post {
    body: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ClientJson {
    id: u64,
    user: UserJson,
    ip_address: String,
    connected_at: String,
    message_count: u64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct IpBan {
    ip_address: String,
    created_at: String,
}

pub fn routes(state: Arc<WebState>) -> Routes {
    let not_cross_site = warp::method()
        .and(warp::header::headers_cloned())
        .and(warp::host::optional())
        .and_then(
            |method: Method, headers: HeaderMap, host: Option<warp::host::Authority>| async move {
                if method == Method::GET {
                    return Ok(());
                }
                cross_site::check(&headers, host.as_ref())
                    .map_err(|why| warp::reject::custom(Denied::CrossSite(why)))
            },
        )
        .untuple_one();
    let admitted = {
        let state = Arc::clone(&state);
        warp::method()
            .and(warp::path::full())
            .and(warp::header::headers_cloned())
            .and(super::client_addr())
            .and_then(
                move |method: Method,
                      path: warp::path::FullPath,
                      headers: HeaderMap,
                      addr: Option<SocketAddr>| {
                    let admitted = admit(&state, &method, path.as_str(), &headers, ip(addr));
                    async move { admitted.map_err(warp::reject::custom) }
                },
            )
            .untuple_one()
    };
    let with_state = {
        let state = Arc::clone(&state);
        warp::any().map(move || Arc::clone(&state))
    };

    let visibility = warp::path!("chat" / "messagevisibility")
        .and(with_state.clone())
        .and(action())
        .map(|state: Arc<WebState>, v: Visibility| {
            answer::visibility(&state.chat, Actor::Owner, v)
        });
    let set_enabled = warp::path!("chat" / "users" / "setenabled")
        .and(with_state.clone())
        .and(action())
        .map(|state: Arc<WebState>, u: UserEnabled| {
            answer::set_enabled(&state.chat, Actor::Owner, u)
        });
    let disabled = warp::path!("chat" / "users" / "disabled")
        .and(warp::get())
        .and(with_state.clone())
        .map(|state: Arc<WebState>| {
            let users: Vec<UserJson> = state
                .chat
                .disabled_users()
                .iter()
                .map(UserJson::of)
                .collect();
            ok(users)
        });
    let ip_bans = warp::path!("chat" / "users" / "ipbans")
        .and(warp::get())
        .and(with_state.clone())
        .map(|state: Arc<WebState>| {
            let bans: Vec<IpBan> = state
                .chat
                .banned_ips()
                .into_iter()
                .map(|(ip, at)| IpBan {
                    ip_address: ip.to_string(),
                    created_at: rfc3339(at),
                })
                .collect();
            ok(bans)
        });
    let ban_ip = warp::path!("chat" / "users" / "ipbans" / "create")
        .and(with_state.clone())
        .and(action())
        .map(
            |state: Arc<WebState>, v: Value<String>| match address(&v.value) {
                Ok(ip) => {
                    state.chat.ban_ip(ip);
                    ok(serde_json::json!({ "success": true }))
                }
                Err(response) => response,
            },
        );
    let unban_ip = warp::path!("chat" / "users" / "ipbans" / "remove")
        .and(with_state.clone())
        .and(action())
        .map(
            |state: Arc<WebState>, v: Value<String>| match address(&v.value) {
                Ok(ip) if state.chat.unban_ip(ip) => ok(serde_json::json!({ "success": true })),
                Ok(_) => error(StatusCode::NOT_FOUND, "that address is not banned"),
                Err(response) => response,
            },
        );
    let clients = warp::path!("chat" / "clients")
        .and(warp::get())
        .and(with_state.clone())
        .map(|state: Arc<WebState>| {
            let clients: Vec<ClientJson> = state
                .chat
                .clients()
                .into_iter()
                .map(|c| ClientJson {
                    id: c.connection,
                    user: UserJson::of(&c.user),
                    ip_address: c.ip.to_string(),
                    connected_at: rfc3339(c.connected_at),
                    message_count: c.messages,
                })
                .collect();
            ok(clients)
        });
    let chat_disable = warp::path!("config" / "chat" / "disable")
        .and(with_state.clone())
        .and(action())
        .map(|state: Arc<WebState>, v: Value<bool>| {
            let mut patch = serde_json::Map::new();
            patch.insert("enabled".into(), (!v.value).into());
            let changed = settings::change_chat(&state, patch);
            if !changed.status().is_success() {
                return changed;
            }
            ok(serde_json::json!({ "success": true, "chatEnabled": !v.value }))
        });
    let system = warp::path!("chat" / "system")
        .and(with_state.clone())
        .and(action())
        .map(
            |state: Arc<WebState>, post: Post| match state.chat.post_system(&post.body) {
                Ok(id) => ok(serde_json::json!({ "success": true, "id": id })),
                Err(refused) => error(StatusCode::BAD_REQUEST, &refused.message),
            },
        );
    let send = warp::path!("chat" / "send")
        .and(with_state)
        .and(action())
        .map(
            |state: Arc<WebState>, post: Post| match state.chat.post_as_streamer(&post.body) {
                Ok(id) => ok(serde_json::json!({ "success": true, "id": id })),
                Err(refused) => error(StatusCode::BAD_REQUEST, &refused.message),
            },
        );

    let moderation = visibility
        .or(set_enabled)
        .unify()
        .or(disabled)
        .unify()
        .or(ip_bans)
        .unify()
        .or(ban_ip)
        .unify()
        .or(unban_ip)
        .unify()
        .or(clients)
        .unify()
        .or(chat_disable)
        .unify()
        .or(send)
        .unify()
        .or(system)
        .unify()
        .boxed();
    // Only requests under /api/admin/ reach `recover`: everything else is another route's.
    warp::path("api")
        .and(warp::path("admin"))
        .and(
            not_cross_site
                .and(
                    account::sign_in(Arc::clone(&state)).or(admitted.and(
                        moderation
                            .or(moderators::routes(Arc::clone(&state)))
                            .unify()
                            .or(account::routes(Arc::clone(&state)))
                            .unify()
                            .or(settings::routes(Arc::clone(&state)))
                            .unify()
                            .or(stream_keys::routes(Arc::clone(&state)))
                            .unify()
                            .or(health::routes(Arc::clone(&state)))
                            .unify()
                            .or(images::routes(state))
                            .unify(),
                    )),
                )
                .unify()
                .recover(recover)
                .unify()
                .map(not_stored),
        )
        .boxed()
}

/// Admin answers hold what no cache may keep (the session's CSRF token, stream keys, users'
/// addresses): `Cache-Control: no-store` on every one.
fn not_stored(mut response: warp::reply::Response) -> warp::reply::Response {
    response.headers_mut().insert(
        warp::http::header::CACHE_CONTROL,
        warp::http::HeaderValue::from_static("no-store"),
    );
    response
}

/// Why a request was not let in.
#[derive(Debug)]
enum Denied {
    CrossSite(CrossSite),
    /// `challenge`: answer with a Basic auth challenge (not to the console's own requests).
    SignIn {
        error: SignInError,
        challenge: bool,
    },
    /// Signed in with the session cookie, without the session's CSRF token.
    Csrf,
}
impl warp::reject::Reject for Denied {}

/// A state-changing request whose `Content-Type` is not JSON.
#[derive(Debug)]
struct NotJson;
impl warp::reject::Reject for NotJson {}

/// A JSON body that is not the one asked for.
#[derive(Debug)]
struct BadJson(String);
impl warp::reject::Reject for BadJson {}

/// Step 2 of the module docs: Basic auth when the request has an `Authorization` header, else
/// the session cookie (and for a change, its CSRF token).
fn admit(
    state: &WebState,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
    peer: IpAddr,
) -> Result<(), Denied> {
    let challenge = wants_challenge(path, headers);
    let denied = |error| Denied::SignIn { error, challenge };
    if let Some(header) = headers.get(AUTHORIZATION) {
        let (user, password) =
            sign_in::basic_credentials(header.as_bytes()).ok_or(denied(SignInError::Missing))?;
        return sign_in::sign_in(state, peer, &user, &password, Instant::now()).map_err(denied);
    }
    let session = session::token_of(headers)
        .and_then(|token| state.sessions.find(token, Instant::now()))
        .ok_or(denied(SignInError::Missing))?;
    if method != Method::GET {
        let given = headers
            .get("x-csrf-token")
            .map(|value| value.as_bytes())
            .unwrap_or_default();
        if !session.csrf_matches(given) {
            return Err(Denied::Csrf);
        }
    }
    Ok(())
}

/// Whether a 401 asks for Basic auth (`WWW-Authenticate`): not to the console, where the
/// browser's password dialog would open over it: its sign-in probe (`/api/admin/session`) and
/// requests with a session cookie (one that has ended). Everything else is asked, so a browser
/// that has the Basic credentials cached sends them (it sends them unasked only under the path
/// where it first signed in).
fn wants_challenge(path: &str, headers: &HeaderMap) -> bool {
    path != "/api/admin/session" && session::token_of(headers).is_none()
}

/// 403, 401 and 429 for a request not let in, 415 for a body that is not JSON, 400 for one
/// that is not the JSON asked for, 404 for an unknown admin path.
async fn recover(rejection: warp::Rejection) -> Result<warp::reply::Response, warp::Rejection> {
    match rejection.find::<Denied>() {
        Some(Denied::CrossSite(why)) => {
            return Ok(error(StatusCode::FORBIDDEN, &why.to_string()));
        }
        Some(Denied::SignIn { error, challenge }) => {
            return Ok(sign_in::refusal(*error, *challenge))
        }
        Some(Denied::Csrf) => {
            return Ok(error(
                StatusCode::FORBIDDEN,
                "refused: a change made with the console's session needs its X-CSRF-Token",
            ))
        }
        None => {}
    }
    if rejection.find::<NotJson>().is_some() {
        return Ok(error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send the body as JSON, with Content-Type: application/json",
        ));
    }
    if let Some(e) = rejection.find::<warp::reject::InvalidHeader>() {
        return Ok(error(StatusCode::BAD_REQUEST, &e.to_string()));
    }
    if let Some(BadJson(why)) = rejection.find::<BadJson>() {
        return Ok(error(
            StatusCode::BAD_REQUEST,
            &format!("bad request body: {why}"),
        ));
    }
    if rejection.find::<warp::reject::LengthRequired>().is_some() {
        return Ok(error(
            StatusCode::LENGTH_REQUIRED,
            "send a JSON body with a Content-Length",
        ));
    }
    if rejection.find::<warp::reject::PayloadTooLarge>().is_some() {
        return Ok(error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "request body too large",
        ));
    }
    if rejection.find::<warp::reject::MethodNotAllowed>().is_some() {
        return Ok(error(
            StatusCode::METHOD_NOT_ALLOWED,
            "wrong method for this admin endpoint",
        ));
    }
    Ok(error(StatusCode::NOT_FOUND, "no such admin endpoint"))
}

/// What every request that changes something is: a `POST` of JSON, said so in `Content-Type`.
fn action<T: serde::de::DeserializeOwned + Send>(
) -> impl Filter<Extract = (T,), Error = warp::Rejection> + Clone {
    json_body(MAX_BODY).and_then(|body: bytes::Bytes| async move {
        serde_json::from_slice(&body).map_err(|e| warp::reject::custom(BadJson(e.to_string())))
    })
}

/// A `POST` whose body is JSON by its `Content-Type`, at most `limit` bytes, not yet parsed.
fn json_body(
    limit: u64,
) -> impl Filter<Extract = (bytes::Bytes,), Error = warp::Rejection> + Clone {
    warp::post()
        .and(warp::header::optional::<String>("content-type"))
        .and_then(|content_type: Option<String>| async move {
            if content_type.as_deref().is_some_and(is_json) {
                Ok(())
            } else {
                Err(warp::reject::custom(NotJson))
            }
        })
        .untuple_one()
        .and(warp::body::content_length_limit(limit))
        .and(warp::body::bytes())
}

/// `application/json`, optionally with `; charset=utf-8`, and nothing else.
fn is_json(content_type: &str) -> bool {
    let mut parts = content_type.split(';');
    let media_type = parts.next().unwrap_or_default().trim();
    if !media_type.eq_ignore_ascii_case("application/json") {
        return false;
    }
    match (parts.next(), parts.next()) {
        (None, _) => true,
        (Some(parameter), None) => parameter.split_once('=').is_some_and(|(name, value)| {
            name.trim().eq_ignore_ascii_case("charset")
                && value.trim().trim_matches('"').eq_ignore_ascii_case("utf-8")
        }),
        _ => false,
    }
}

/// The IP address in an IP-ban request, or the 400 answer.
fn address(value: &str) -> Result<IpAddr, warp::reply::Response> {
    value.trim().parse().map_err(|_| {
        error(
            StatusCode::BAD_REQUEST,
            "value must be an IPv4 or IPv6 address",
        )
    })
}

fn ok(value: impl Serialize) -> warp::reply::Response {
    warp::reply::json(&value).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_json_is_json() {
        for json in [
            "application/json",
            "Application/JSON",
            "application/json; charset=utf-8",
            "application/json;charset=UTF-8",
            "application/json; charset=\"utf-8\"",
        ] {
            assert!(is_json(json), "{json}");
        }
        for other in [
            "",
            "text/plain",
            "text/plain; charset=utf-8",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "application/jsonx",
            "application/vnd.api+json",
            "application/json; charset=latin1",
            "application/json; charset=utf-8; x=y",
            "application/json;",
            "application/json, text/plain",
        ] {
            assert!(!is_json(other), "{other}");
        }
    }
}
