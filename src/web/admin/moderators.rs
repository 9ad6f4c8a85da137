//! The admin API's moderators, timeouts and moderation view of the chat (docs/API.md):
//! `POST chat/users/setmoderator` and `GET chat/users/moderators` (Owncast's), `POST
//! chat/users/timeout` (selfcast's; the moderators' own is in [`crate::web::chat_moderation`]),
//! and `GET chat/messages` (Owncast's): every kept message, hidden ones with when and by whom.

use std::sync::Arc;

use serde::Deserialize;
use warp::http::StatusCode;
use warp::Filter;

use super::{action, ok};
use crate::chat::events::{rfc3339, UserJson};
use crate::chat::history::Kept;
use crate::chat::moderation::Actor;
use crate::web::chat::error;
use crate::web::chat_moderation::{self, Timeout};
use crate::web::Routes;
use crate::web::WebState;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SetModerator {
    user_id: String,
    is_moderator: bool,
}

pub fn routes(state: Arc<WebState>) -> Routes {
    let with_state = warp::any().map(move || Arc::clone(&state));
    let set_moderator = warp::path!("chat" / "users" / "setmoderator")
        .and(with_state.clone())
        .and(action())
        .map(|state: Arc<WebState>, m: SetModerator| {
            match state.chat.set_moderator(&m.user_id, m.is_moderator) {
                Some(user) => {
                    ok(serde_json::json!({ "success": true, "user": UserJson::of(&user) }))
                }
                None => error(StatusCode::NOT_FOUND, "no such user"),
            }
        });
    let moderators = warp::path!("chat" / "users" / "moderators")
        .and(warp::get())
        .and(with_state.clone())
        .map(|state: Arc<WebState>| {
            let users: Vec<UserJson> = state.chat.moderators().iter().map(UserJson::of).collect();
            ok(users)
        });
    let timeout = warp::path!("chat" / "users" / "timeout")
        .and(with_state.clone())
        .and(action())
        .map(|state: Arc<WebState>, t: Timeout| {
            chat_moderation::time_out(&state.chat, Actor::Owner, t)
        });
    let messages = warp::path!("chat" / "messages")
        .and(warp::get())
        .and(with_state)
        .map(|state: Arc<WebState>| {
            let messages: Vec<serde_json::Value> = state
                .chat
                .kept_messages()
                .iter()
                .map(moderation_view)
                .collect();
            ok(messages)
        });
    set_moderator
        .or(moderators)
        .unify()
        .or(timeout)
        .unify()
        .or(messages)
        .unify()
        .boxed()
}

/// The message's `CHAT` event with `visible`, and when hidden, `hiddenAt` and `hiddenBy`.
fn moderation_view(message: &Kept) -> serde_json::Value {
    let mut event: serde_json::Value =
        serde_json::from_str(&message.json).unwrap_or_else(|_| serde_json::json!({}));
    if let Some(fields) = event.as_object_mut() {
        fields.insert("visible".into(), message.hidden.is_none().into());
        if let Some(hidden) = &message.hidden {
            fields.insert("hiddenAt".into(), rfc3339(hidden.at).into());
            fields.insert("hiddenBy".into(), hidden.by.clone().into());
        }
    }
    event
}
