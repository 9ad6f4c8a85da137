//! Moderation over HTTP: the moderator's endpoints in the chat (`POST
//! /api/chat/messagevisibility`, `/api/chat/users/setenabled` and `/api/chat/users/timeout`, with
//! the moderator's chat `accessToken` in the query string, as Owncast's), and the answers they
//! share with the admin API's endpoints of the same names: the same bodies and responses. Who may
//! do what is the hub's to check ([`crate::chat::moderation`]); a refusal is 401 (no token, or
//! one nobody has), 403 (not allowed), 404 (no such user) or 400 (a bad request).

use std::sync::Arc;

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use warp::http::StatusCode;
use warp::{Filter, Reply};

use super::chat::error;
use super::WebState;
use crate::chat::events::UserJson;
use crate::chat::moderation::{Actor, Denied};
use crate::chat::Hub;
use crate::web::Routes;

/// Request bodies are small JSON objects (at most 100 message ids).
const MAX_BODY: u64 = 16 * 1024;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Visibility {
    id_array: Vec<String>,
    visible: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserEnabled {
    user_id: String,
    enabled: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Timeout {
    user_id: String,
    minutes: u32,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TokenQuery {
    access_token: Option<String>,
}

/// `{"success": true, "known": <kept ids>}`.
pub fn visibility(hub: &Hub, actor: Actor<'_>, v: Visibility) -> warp::reply::Response {
    match hub.set_visibility(actor, &v.id_array, v.visible) {
        Ok(known) => success(serde_json::json!({ "success": true, "known": known })),
        Err(denied) => refusal(&denied),
    }
}

/// `{"success": true, "user": {...}}`.
pub fn set_enabled(hub: &Hub, actor: Actor<'_>, u: UserEnabled) -> warp::reply::Response {
    match hub.set_user_enabled(actor, &u.user_id, u.enabled) {
        Ok(user) => success(serde_json::json!({ "success": true, "user": UserJson::of(&user) })),
        Err(denied) => refusal(&denied),
    }
}

/// `{"success": true, "user": {...}}`, with `timedOutUntil` unless the timeout was lifted.
pub fn time_out(hub: &Hub, actor: Actor<'_>, t: Timeout) -> warp::reply::Response {
    match hub.time_out(actor, &t.user_id, t.minutes) {
        Ok(user) => success(serde_json::json!({ "success": true, "user": UserJson::of(&user) })),
        Err(denied) => refusal(&denied),
    }
}

/// The moderator's endpoints under `/api/chat/`.
pub fn routes(state: Arc<WebState>) -> Routes {
    let request = move || {
        let state = Arc::clone(&state);
        warp::post()
            .and(warp::query::<TokenQuery>())
            .and(warp::body::content_length_limit(MAX_BODY))
            .and(warp::body::bytes())
            .map(move |query: TokenQuery, body: Bytes| (Arc::clone(&state), query, body))
    };
    let visibility_route = warp::path!("api" / "chat" / "messagevisibility")
        .and(request())
        .map(|(state, query, body): (Arc<WebState>, TokenQuery, Bytes)| {
            with_body(&body, |v| visibility(&state.chat, moderator(&query), v))
        });
    let enabled_route = warp::path!("api" / "chat" / "users" / "setenabled")
        .and(request())
        .map(|(state, query, body): (Arc<WebState>, TokenQuery, Bytes)| {
            with_body(&body, |u| set_enabled(&state.chat, moderator(&query), u))
        });
    let timeout_route = warp::path!("api" / "chat" / "users" / "timeout")
        .and(request())
        .map(|(state, query, body): (Arc<WebState>, TokenQuery, Bytes)| {
            with_body(&body, |t| time_out(&state.chat, moderator(&query), t))
        });
    visibility_route
        .or(enabled_route)
        .unify()
        .or(timeout_route)
        .unify()
        .boxed()
}

fn moderator(query: &TokenQuery) -> Actor<'_> {
    Actor::Moderator(query.access_token.as_deref().unwrap_or_default())
}

/// `answer(body)` if `body` is the JSON asked for, else 400.
fn with_body<T: DeserializeOwned>(
    body: &[u8],
    answer: impl FnOnce(T) -> warp::reply::Response,
) -> warp::reply::Response {
    match serde_json::from_slice(body) {
        Ok(request) => answer(request),
        Err(e) => error(StatusCode::BAD_REQUEST, &format!("bad request body: {e}")),
    }
}

fn refusal(denied: &Denied) -> warp::reply::Response {
    let status = match denied {
        Denied::NotSignedIn => StatusCode::UNAUTHORIZED,
        Denied::Forbidden(_) => StatusCode::FORBIDDEN,
        Denied::NoSuchUser => StatusCode::NOT_FOUND,
        Denied::Invalid(_) => StatusCode::BAD_REQUEST,
    };
    error(status, &denied.to_string())
}

fn success(value: serde_json::Value) -> warp::reply::Response {
    warp::reply::json(&value).into_response()
}
