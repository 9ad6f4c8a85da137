//! The live settings under `/api/admin/settings` ([`crate::settings`]): what each is now and
//! where it comes from, and changing them. A bad value is answered with the field it is in, for
//! the console to show there, and nothing is saved.

use std::sync::Arc;

use bytes::Bytes;
use serde::Serialize;
use serde_json::{Map, Value};
use tracing::error as log_error;
use warp::http::StatusCode;
use warp::Filter;

use super::account::field_error;
use super::images::ImagesJson;
use super::{json_body, ok};
use crate::pipeline::LadderChange;
use crate::settings::chat::ChatValues;
use crate::settings::page::PageValues;
use crate::settings::video::VideoValues;
use crate::settings::{ChangeError, View};
use crate::web::chat::error;
use crate::web::Routes;
use crate::web::WebState;

/// A page change carries the custom CSS (up to 64 KiB, escaped in JSON).
const MAX_BODY: u64 = 256 * 1024;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SettingsJson<'a> {
    page: View<PageValues>,
    chat: View<ChatValues>,
    video: View<VideoValues>,
    /// The live publish runs another ladder than `video`'s: the next publish runs that one.
    video_pending: bool,
    images: ImagesJson,
    problems: &'a [String],
}

pub fn routes(state: Arc<WebState>) -> Routes {
    let with_state = warp::any().map(move || Arc::clone(&state));
    let all = warp::path!("settings")
        .and(warp::get())
        .and(with_state.clone())
        .map(|state: Arc<WebState>| {
            ok(SettingsJson {
                page: state.settings.page_view(),
                chat: state.settings.chat_view(),
                video: state.settings.video_view(),
                video_pending: state.pipeline.ladder_pending(),
                images: ImagesJson::of(&state),
                problems: state.settings.problems(),
            })
        });
    let page = warp::path!("settings" / "page")
        .and(with_state.clone())
        .and(json_body(MAX_BODY))
        .map(|state: Arc<WebState>, body: Bytes| match object(&body) {
            Ok(patch) => answer("page", state.settings.change_page(patch)),
            Err(response) => response,
        });
    let chat = warp::path!("settings" / "chat")
        .and(with_state.clone())
        .and(json_body(MAX_BODY))
        .map(|state: Arc<WebState>, body: Bytes| match object(&body) {
            Ok(patch) => change_chat(&state, patch),
            Err(response) => response,
        });
    let video = warp::path!("settings" / "video")
        .and(with_state)
        .and(json_body(MAX_BODY))
        .map(|state: Arc<WebState>, body: Bytes| match object(&body) {
            Ok(patch) => change_video(&state, patch),
            Err(response) => response,
        });
    all.or(page)
        .unify()
        .or(chat)
        .unify()
        .or(video)
        .unify()
        .boxed()
}

/// Changes the chat's settings and hands the new values to the chat (for the console's form
/// and Owncast's on/off switch alike).
pub fn change_chat(state: &WebState, patch: Map<String, Value>) -> warp::reply::Response {
    let changed = state.settings.change_chat(patch);
    if let Ok(view) = &changed {
        if let Err(e) = state.chat.apply_settings(&view.values) {
            // The settings checked the name with the chat's own rules: not expected.
            log_error!("{e}");
        }
    }
    answer("chat", changed)
}

/// Changes the video settings and hands the ladder to the pipeline: in use at once while
/// offline, else from the next publish (`"pending": true`).
fn change_video(state: &WebState, patch: Map<String, Value>) -> warp::reply::Response {
    match state.settings.change_video(patch) {
        Ok(view) => {
            let change = state.pipeline.set_ladder(&view.values.ladder());
            ok(serde_json::json!({
                "success": true,
                "video": view,
                "pending": change == LadderChange::AtNextPublish,
            }))
        }
        Err(e) => answer::<VideoValues>("video", Err(e)),
    }
}

/// `{"success": true, "<section>": {values, sources}}`, or the field at fault.
fn answer<T: Serialize>(
    section: &str,
    changed: Result<View<T>, ChangeError>,
) -> warp::reply::Response {
    match changed {
        Ok(view) => ok(serde_json::json!({ "success": true, section: view })),
        Err(ChangeError::Invalid(e)) => field_error(&e.field, &e.message),
        Err(ChangeError::Save(e)) => {
            log_error!("{e}");
            error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string())
        }
    }
}

/// The JSON object of `body` (which fields, and their types, the section checks), or a 400.
fn object(body: &[u8]) -> Result<Map<String, Value>, warp::reply::Response> {
    serde_json::from_slice(body).map_err(|e| {
        error(
            StatusCode::BAD_REQUEST,
            &format!("bad request body: a JSON object of settings is expected ({e})"),
        )
    })
}
