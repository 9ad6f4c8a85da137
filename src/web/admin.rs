//! The moderation API under `/api/admin/` (docs/API.md): every request needs HTTP Basic auth
//! `admin:<password>` (compared in constant time); anything else gets 401 and a
//! `WWW-Authenticate` challenge. Paths and bodies follow Owncast's admin API where it has one.

use std::net::IpAddr;
use std::sync::Arc;

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use warp::http::StatusCode;
use warp::{Filter, Reply};

use super::chat::error;
use super::WebState;
use crate::chat::events::{rfc3339, UserJson};
use crate::secrets::constant_time_eq;

/// Request bodies are small JSON objects.
const MAX_BODY: u64 = 16 * 1024;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Visibility {
    id_array: Vec<String>,
    visible: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UserEnabled {
    user_id: String,
    enabled: bool,
}

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

pub fn routes(
    state: Arc<WebState>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = warp::Rejection> + Clone {
    let authorized = {
        let state = Arc::clone(&state);
        warp::header::optional::<String>("authorization")
            .and_then(move |header: Option<String>| {
                let ok = header
                    .as_deref()
                    .is_some_and(|h| basic_auth_ok(h, &state.admin_password));
                async move {
                    if ok {
                        Ok(())
                    } else {
                        Err(warp::reject::custom(Unauthorized))
                    }
                }
            })
            .untuple_one()
    };
    let with_state = {
        let state = Arc::clone(&state);
        warp::any().map(move || Arc::clone(&state))
    };

    let visibility = warp::path!("chat" / "messagevisibility")
        .and(warp::post())
        .and(with_state.clone())
        .and(json_body())
        .map(|state: Arc<WebState>, v: Visibility| {
            let known = state.chat.set_visibility(&v.id_array, v.visible);
            ok(serde_json::json!({ "success": true, "known": known }))
        });
    let set_enabled = warp::path!("chat" / "users" / "setenabled")
        .and(warp::post())
        .and(with_state.clone())
        .and(json_body())
        .map(|state: Arc<WebState>, u: UserEnabled| {
            match state.chat.set_user_enabled(&u.user_id, u.enabled) {
                Some(user) => {
                    ok(serde_json::json!({ "success": true, "user": UserJson::of(&user) }))
                }
                None => error(StatusCode::NOT_FOUND, "no such user"),
            }
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
        .and(warp::post())
        .and(with_state.clone())
        .and(json_body())
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
        .and(warp::post())
        .and(with_state.clone())
        .and(json_body())
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
        .and(warp::post())
        .and(with_state.clone())
        .and(json_body())
        .map(|state: Arc<WebState>, v: Value<bool>| {
            state.chat.set_chat_enabled(!v.value);
            ok(serde_json::json!({ "success": true, "chatEnabled": !v.value }))
        });
    let system = warp::path!("chat" / "system")
        .and(warp::post())
        .and(with_state.clone())
        .and(json_body())
        .map(
            |state: Arc<WebState>, post: Post| match state.chat.post_system(&post.body) {
                Ok(id) => ok(serde_json::json!({ "success": true, "id": id })),
                Err(refused) => error(StatusCode::BAD_REQUEST, &refused.message),
            },
        );
    let send = warp::path!("chat" / "send")
        .and(warp::post())
        .and(with_state)
        .and(json_body())
        .map(
            |state: Arc<WebState>, post: Post| match state.chat.post_as_streamer(&post.body) {
                Ok(id) => ok(serde_json::json!({ "success": true, "id": id })),
                Err(refused) => error(StatusCode::BAD_REQUEST, &refused.message),
            },
        );

    // Only requests under /api/admin/ reach `recover`: everything else is another route's.
    warp::path("api").and(warp::path("admin")).and(
        authorized
            .and(
                visibility
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
                    .unify(),
            )
            .recover(recover)
            .unify(),
    )
}

#[derive(Debug)]
struct Unauthorized;
impl warp::reject::Reject for Unauthorized {}

/// 401 with a challenge for a missing or wrong password, 400 for a body that is not the JSON
/// asked for, 404 for an unknown admin path.
async fn recover(rejection: warp::Rejection) -> Result<warp::reply::Response, warp::Rejection> {
    if rejection.find::<Unauthorized>().is_some() {
        let mut response = error(
            StatusCode::UNAUTHORIZED,
            "the admin API needs the admin password (HTTP Basic auth, user admin)",
        );
        response.headers_mut().insert(
            "www-authenticate",
            warp::http::HeaderValue::from_static("Basic realm=\"selfcast\""),
        );
        return Ok(response);
    }
    if let Some(e) = rejection.find::<warp::filters::body::BodyDeserializeError>() {
        return Ok(error(
            StatusCode::BAD_REQUEST,
            &format!("bad request body: {e}"),
        ));
    }
    if rejection
        .find::<warp::reject::UnsupportedMediaType>()
        .is_some()
    {
        return Ok(error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send the body as JSON (Content-Type: application/json)",
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

fn json_body<T: serde::de::DeserializeOwned + Send>(
) -> impl Filter<Extract = (T,), Error = warp::Rejection> + Clone {
    warp::body::content_length_limit(MAX_BODY).and(warp::body::json())
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

/// `Basic base64(admin:<password>)`, the password compared in constant time.
fn basic_auth_ok(header: &str, password: &str) -> bool {
    let Some(encoded) = header
        .strip_prefix("Basic ")
        .or_else(|| header.strip_prefix("basic "))
    else {
        return false;
    };
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else {
        return false;
    };
    let Some(colon) = decoded.iter().position(|&b| b == b':') else {
        return false;
    };
    let (user, given) = (&decoded[..colon], &decoded[colon + 1..]);
    // Both compared, whatever the first says: the time does not tell which was wrong.
    let user_ok = constant_time_eq(user, b"admin");
    let password_ok = constant_time_eq(given, password.as_bytes());
    user_ok & password_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_auth() {
        // "admin:s3cret-pass" and "admin:wrong" in base64.
        assert!(basic_auth_ok(
            "Basic YWRtaW46czNjcmV0LXBhc3M=",
            "s3cret-pass"
        ));
        assert!(!basic_auth_ok("Basic YWRtaW46d3Jvbmc=", "s3cret-pass"));
        // "root:s3cret-pass"
        assert!(!basic_auth_ok(
            "Basic cm9vdDpzM2NyZXQtcGFzcw==",
            "s3cret-pass"
        ));
        assert!(!basic_auth_ok(
            "Bearer YWRtaW46czNjcmV0LXBhc3M=",
            "s3cret-pass"
        ));
        assert!(!basic_auth_ok("Basic !!!", "s3cret-pass"));
        assert!(!basic_auth_ok("Basic YWRtaW4=", "s3cret-pass"), "no colon");
    }
}
