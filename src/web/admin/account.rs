//! The console's account endpoints under `/api/admin/`: signing in with the password (which
//! starts a session, [`super::session`]), what the session is, signing out, and changing the
//! password. Signing in is the one admin endpoint not behind the admission check; it goes
//! through the same brute-force guard as Basic auth.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use serde::Deserialize;
use tracing::{error as log_error, info};
use warp::http::{HeaderMap, HeaderValue, StatusCode};
use warp::{Filter, Reply};

use super::password::ChangeError;
use super::session::{self, Session};
use super::sign_in::{self, SignInError};
use super::{action, ok};
use crate::chat::events::rfc3339;
use crate::web::chat::{error, ip};
use crate::web::Routes;
use crate::web::{client_addr, WebState};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SignIn {
    password: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PasswordChange {
    old_password: String,
    new_password: String,
}

/// `POST /api/admin/session`: the password in, a session cookie out.
pub fn sign_in(state: Arc<WebState>) -> Routes {
    warp::path!("session")
        .and(warp::header::optional::<String>("origin"))
        .and(client_addr())
        .and(action())
        .map(
            move |origin: Option<String>, addr: Option<SocketAddr>, body: SignIn| {
                let now = Instant::now();
                let peer = ip(addr);
                if let Err(failed) =
                    sign_in::sign_in(&state, peer, b"admin", body.password.as_bytes(), now)
                {
                    return sign_in::refusal(failed, false);
                }
                let started = match state.sessions.start(now) {
                    Ok(started) => started,
                    Err(e) => {
                        log_error!("cannot start an admin session: {e}");
                        return error(StatusCode::INTERNAL_SERVER_ERROR, "cannot sign in now");
                    }
                };
                info!(%peer, "the admin signed in to the console");
                // The console's page was loaded over HTTPS (through a proxy, say): the browser
                // then sends the cookie over HTTPS only.
                let secure = origin.is_some_and(|o| o.starts_with("https://"));
                with_cookie(
                    ok(serde_json::json!({
                        "success": true,
                        "csrfToken": started.csrf_token,
                        "expiresAt": rfc3339(started.expires_at),
                    })),
                    &session::set_cookie(&started.token, secure),
                )
            },
        )
        .boxed()
}

/// `GET /api/admin/session`, `POST /api/admin/session/end`, `POST /api/admin/password`: for
/// a caller already admitted.
pub fn routes(state: Arc<WebState>) -> Routes {
    let with_state = warp::any().map(move || Arc::clone(&state));
    let token = warp::header::headers_cloned()
        .map(|headers: HeaderMap| session::token_of(&headers).map(str::to_owned));

    let info = warp::path!("session")
        .and(warp::get())
        .and(with_state.clone())
        .and(token.clone())
        .map(|state: Arc<WebState>, token: Option<String>| {
            let session = current(&state, token.as_deref());
            ok(serde_json::json!({
                "success": true,
                "csrfToken": session.as_ref().map(|s| s.csrf_token.clone()),
                "expiresAt": session.map(|s| rfc3339(s.expires_at)),
                "passwordFromConfig": state.admin_password.is_from_config(),
            }))
        });
    let sign_out = warp::path!("session" / "end")
        .and(with_state.clone())
        .and(token.clone())
        .and(action())
        .map(
            |state: Arc<WebState>, token: Option<String>, _: serde_json::Map<_, _>| {
                if let Some(token) = token {
                    state.sessions.end(&token);
                }
                with_cookie(
                    ok(serde_json::json!({ "success": true })),
                    &session::clear_cookie(),
                )
            },
        );
    let change_password = warp::path!("password")
        .and(with_state)
        .and(token)
        .and(client_addr())
        .and(action())
        .map(
            |state: Arc<WebState>,
             token: Option<String>,
             addr: Option<SocketAddr>,
             change: PasswordChange| {
                change_password(&state, token.as_deref(), ip(addr), &change)
            },
        );
    info.or(sign_out)
        .unify()
        .or(change_password)
        .unify()
        .boxed()
}

fn change_password(
    state: &WebState,
    token: Option<&str>,
    peer: std::net::IpAddr,
    change: &PasswordChange,
) -> warp::reply::Response {
    if state.admin_password.is_from_config() {
        return error(StatusCode::CONFLICT, &ChangeError::FromConfig.to_string());
    }
    let now = Instant::now();
    match sign_in::sign_in(state, peer, b"admin", change.old_password.as_bytes(), now) {
        Ok(()) => {}
        Err(SignInError::Wrong | SignInError::Missing) => {
            return field_error("oldPassword", "the old password is wrong")
        }
        Err(too_many) => return sign_in::refusal(too_many, false),
    }
    match state.admin_password.change(&change.new_password) {
        Ok(()) => {
            state.sessions.end_all_but(token);
            info!(%peer, "the admin password was changed; other console sessions ended");
            ok(serde_json::json!({ "success": true }))
        }
        Err(e @ ChangeError::Unacceptable(_)) => field_error("newPassword", &e.to_string()),
        Err(e @ ChangeError::FromConfig) => error(StatusCode::CONFLICT, &e.to_string()),
        Err(e @ ChangeError::Save { .. }) => {
            log_error!("{e}");
            error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string())
        }
    }
}

/// The session `token` names, if it is open.
fn current(state: &WebState, token: Option<&str>) -> Option<Session> {
    token.and_then(|token| state.sessions.find(token, Instant::now()))
}

/// 400 `{"error", "field"}`: the console shows it at that field.
pub(super) fn field_error(field: &str, message: &str) -> warp::reply::Response {
    let body = serde_json::json!({ "error": message, "field": field });
    warp::reply::with_status(warp::reply::json(&body), StatusCode::BAD_REQUEST).into_response()
}

fn with_cookie(mut response: warp::reply::Response, cookie: &str) -> warp::reply::Response {
    if let Ok(value) = HeaderValue::from_str(cookie) {
        response.headers_mut().append("set-cookie", value);
    }
    response
}
