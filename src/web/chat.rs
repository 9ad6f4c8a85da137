//! The chat's HTTP side (docs/CHAT.md): `POST /api/chat/register`, `GET /api/chat` (the recent
//! messages) and the websocket at `/ws`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use warp::http::StatusCode;
use warp::Filter;

use super::WebState;
use crate::chat::connection::{self, MAX_FRAME_BYTES};
use crate::chat::events::ErrorKind;

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct RegisterRequest {
    display_name: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Registered {
    id: String,
    access_token: String,
    display_name: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TokenQuery {
    access_token: Option<String>,
}

/// The client's address (unknown only for a request that did not come through `listener.rs`). An
/// IPv4 client of a dual-stack `[::]` listener arrives as `::ffff:a.b.c.d`: it is `a.b.c.d`, so
/// that bans and caps by address see one address.
pub(super) fn ip(addr: Option<SocketAddr>) -> IpAddr {
    addr.map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |a| a.ip().to_canonical())
}

pub fn routes(state: Arc<WebState>) -> Routes {
    let register = {
        let state = Arc::clone(&state);
        warp::path!("api" / "chat" / "register")
            .and(warp::post())
            .and(super::client_addr())
            .and(warp::body::content_length_limit(4096))
            .and(warp::body::bytes())
            .map(move |addr: Option<SocketAddr>, body: bytes::Bytes| {
                let hub = &state.chat;
                if hub.is_banned(ip(addr)) {
                    return error(StatusCode::FORBIDDEN, "you are banned from this chat");
                }
                let request: RegisterRequest = if body.iter().all(u8::is_ascii_whitespace) {
                    RegisterRequest::default()
                } else {
                    match serde_json::from_slice(&body) {
                        Ok(request) => request,
                        Err(_) => {
                            return error(
                                StatusCode::BAD_REQUEST,
                                "send JSON: {\"displayName\": \"...\"} (optional)",
                            )
                        }
                    }
                };
                match hub.register(request.display_name.as_deref(), ip(addr)) {
                    Ok((user, token)) => json(
                        StatusCode::OK,
                        &Registered {
                            id: user.id,
                            access_token: token,
                            display_name: user.display_name,
                        },
                    ),
                    Err(refused) if refused.kind == ErrorKind::InvalidName => {
                        error(StatusCode::BAD_REQUEST, &refused.message)
                    }
                    Err(refused) if refused.kind == ErrorKind::RateLimited => {
                        let mut response = error(StatusCode::TOO_MANY_REQUESTS, &refused.message);
                        response
                            .headers_mut()
                            .insert("retry-after", warp::http::HeaderValue::from_static("60"));
                        response
                    }
                    Err(refused) => error(StatusCode::SERVICE_UNAVAILABLE, &refused.message),
                }
            })
    };
    let history = {
        let state = Arc::clone(&state);
        warp::path!("api" / "chat").and(warp::get()).map(move || {
            let events = state.chat.history();
            let body = format!(
                "[{}]",
                events.iter().map(|e| &**e).collect::<Vec<&str>>().join(",")
            );
            warp::http::Response::builder()
                .header("content-type", "application/json")
                .header("cache-control", "no-store")
                .body(body)
                .map(warp::Reply::into_response)
                .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
        })
    };
    let websocket = warp::path!("ws")
        .and(warp::ws())
        .and(warp::query::<TokenQuery>())
        .and(super::client_addr())
        .map(
            move |ws: warp::ws::Ws, query: TokenQuery, addr: Option<SocketAddr>| {
                let hub = Arc::clone(&state.chat);
                ws.max_message_size(MAX_FRAME_BYTES)
                    .max_frame_size(MAX_FRAME_BYTES)
                    .on_upgrade(move |socket| {
                        connection::run(hub, socket, query.access_token, ip(addr))
                    })
            },
        );
    register
        .or(history)
        .unify()
        .or(websocket.map(warp::Reply::into_response))
        .unify()
        .boxed()
}

use crate::web::Routes;
use warp::Reply as _;

fn json(status: StatusCode, value: &impl Serialize) -> warp::reply::Response {
    warp::reply::with_status(warp::reply::json(value), status).into_response()
}

/// `{"error": "..."}` with `status`.
pub fn error(status: StatusCode, message: &str) -> warp::reply::Response {
    json(status, &serde_json::json!({ "error": message }))
}
