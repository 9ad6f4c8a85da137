//! Stream keys and the publisher under `/api/admin/` ([`crate::stream_keys`]): list (each key
//! masked), reveal one, add, comment, regenerate, revoke; disconnect the live publisher, or restart
//! its pipeline with the video settings in force (the console's "Apply now").
//! Revoking or regenerating the key the live publisher uses disconnects it too: a leaked key is
//! shut out at once, not at its next reconnect.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tracing::{error as log_error, info};
use warp::http::StatusCode;
use warp::Filter;

use super::account::field_error;
use super::{action, ok};
use crate::chat::events::rfc3339;
use crate::stream_keys::{masked, KeyError, StreamKey, CONFIG_KEY_ID};
use crate::web::chat::error;
use crate::web::Routes;
use crate::web::WebState;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Id {
    id: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Comment {
    #[serde(default)]
    id: Option<String>,
    comment: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct KeyJson {
    id: String,
    comment: String,
    /// Empty for the config file's key.
    created_at: String,
    /// Its first characters: the whole key only on request.
    masked: String,
    from_config: bool,
    /// The live publisher publishes with it.
    in_use: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PublisherJson {
    address: String,
    key_id: String,
    since: String,
}

pub fn routes(state: Arc<WebState>) -> Routes {
    let with_state = warp::any().map(move || Arc::clone(&state));
    let list = warp::path!("streamkeys")
        .and(warp::get())
        .and(with_state.clone())
        .map(|state: Arc<WebState>| {
            let publisher = state.pipeline.live_publisher();
            let in_use = publisher.as_ref().map(|p| p.key_id.as_str());
            let keys: Vec<KeyJson> = state
                .stream_keys
                .list()
                .into_iter()
                .map(|key| KeyJson {
                    in_use: in_use == Some(key.id.as_str()),
                    from_config: key.id == CONFIG_KEY_ID,
                    masked: masked(&key.key),
                    id: key.id,
                    comment: key.comment,
                    created_at: key.created_at,
                })
                .collect();
            ok(serde_json::json!({
                "keys": keys,
                "publisher": publisher.map(|p| PublisherJson {
                    address: p.peer.ip().to_string(),
                    key_id: p.key_id,
                    since: rfc3339(p.since),
                }),
            }))
        });
    let reveal = warp::path!("streamkeys" / "reveal")
        .and(with_state.clone())
        .and(action())
        .map(|state: Arc<WebState>, Id { id }: Id| {
            match state.stream_keys.list().into_iter().find(|k| k.id == id) {
                Some(key) => ok(serde_json::json!({ "success": true, "key": key.key })),
                None => answer(KeyError::Unknown(id)),
            }
        });
    let create = warp::path!("streamkeys" / "create")
        .and(with_state.clone())
        .and(action())
        .map(
            |state: Arc<WebState>, body: Comment| match state.stream_keys.add(&body.comment) {
                Ok(key) => {
                    info!(id = %key.id, "stream key added");
                    ok(serde_json::json!({ "success": true, "key": full(&key) }))
                }
                Err(e) => answer(e),
            },
        );
    let comment = warp::path!("streamkeys" / "comment")
        .and(with_state.clone())
        .and(action())
        .map(|state: Arc<WebState>, body: Comment| {
            let Some(id) = body.id else {
                return field_error("id", "which key: give its id");
            };
            match state.stream_keys.set_comment(&id, &body.comment) {
                Ok(_) => ok(serde_json::json!({ "success": true })),
                Err(e) => answer(e),
            }
        });
    let regenerate = warp::path!("streamkeys" / "regenerate")
        .and(with_state.clone())
        .and(action())
        .map(
            |state: Arc<WebState>, Id { id }: Id| match state.stream_keys.regenerate(&id) {
                Ok(key) => {
                    let disconnected = state.pipeline.disconnect(Some(&id));
                    info!(%id, disconnected, "stream key regenerated");
                    ok(serde_json::json!({
                        "success": true,
                        "key": full(&key),
                        "disconnected": disconnected,
                    }))
                }
                Err(e) => answer(e),
            },
        );
    let revoke = warp::path!("streamkeys" / "revoke")
        .and(with_state.clone())
        .and(action())
        .map(
            |state: Arc<WebState>, Id { id }: Id| match state.stream_keys.revoke(&id) {
                Ok(()) => {
                    let disconnected = state.pipeline.disconnect(Some(&id));
                    info!(%id, disconnected, "stream key revoked");
                    ok(serde_json::json!({ "success": true, "disconnected": disconnected }))
                }
                Err(e) => answer(e),
            },
        );
    let disconnect = warp::path!("publisher" / "disconnect")
        .and(with_state.clone())
        .and(action())
        .map(
            |state: Arc<WebState>, _: serde_json::Map<String, serde_json::Value>| {
                let disconnected = state.pipeline.disconnect(None);
                ok(serde_json::json!({ "success": true, "disconnected": disconnected }))
            },
        );
    // "Apply now": the live publish restarts its pipeline with the video settings in force.
    let restart = warp::path!("publisher" / "restart")
        .and(with_state)
        .and(action())
        .map(
            |state: Arc<WebState>, _: serde_json::Map<String, serde_json::Value>| {
                let restarted = state.pipeline.restart_live();
                ok(serde_json::json!({ "success": true, "restarted": restarted }))
            },
        );
    list.or(reveal)
        .unify()
        .or(create)
        .unify()
        .or(comment)
        .unify()
        .or(regenerate)
        .unify()
        .or(revoke)
        .unify()
        .or(disconnect)
        .unify()
        .or(restart)
        .unify()
        .boxed()
}

/// A key just made, shown once in full.
fn full(key: &StreamKey) -> serde_json::Value {
    serde_json::json!({
        "id": key.id,
        "key": key.key,
        "comment": key.comment,
        "createdAt": key.created_at,
    })
}

fn answer(e: KeyError) -> warp::reply::Response {
    match e {
        KeyError::Unknown(_) => error(StatusCode::NOT_FOUND, &e.to_string()),
        KeyError::FromConfig | KeyError::TooMany => error(StatusCode::CONFLICT, &e.to_string()),
        KeyError::BadComment => field_error("comment", &e.to_string()),
        KeyError::Save { .. } | KeyError::Load { .. } | KeyError::Secret(_) => {
            log_error!("{e}");
            error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string())
        }
    }
}
