//! The live settings under `/api/admin/settings` ([`crate::settings`]): what each is now and
//! where it comes from, and changing them. A bad value is answered with the field it is in, for
//! the console to show there, and nothing is saved.

use std::sync::Arc;

use bytes::Bytes;
use serde::Serialize;
use tracing::error as log_error;
use warp::http::StatusCode;
use warp::Filter;

use super::account::field_error;
use super::{json_body, ok};
use crate::settings::page::PagePatch;
use crate::settings::{ChangeError, PageView};
use crate::web::chat::error;
use crate::web::WebState;

/// A page change carries the custom CSS (up to 64 KiB, escaped in JSON).
const MAX_BODY: u64 = 256 * 1024;

#[derive(Serialize)]
struct SettingsJson<'a> {
    page: PageView,
    problems: &'a [String],
}

pub fn routes(
    state: Arc<WebState>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = warp::Rejection> + Clone {
    let with_state = warp::any().map(move || Arc::clone(&state));
    let all = warp::path!("settings")
        .and(warp::get())
        .and(with_state.clone())
        .map(|state: Arc<WebState>| {
            ok(SettingsJson {
                page: state.settings.page_view(),
                problems: state.settings.problems(),
            })
        });
    let page = warp::path!("settings" / "page")
        .and(with_state)
        .and(json_body(MAX_BODY))
        .map(|state: Arc<WebState>, body: Bytes| {
            let patch: PagePatch = match parse(&body) {
                Ok(patch) => patch,
                Err(response) => return response,
            };
            match state.settings.change_page(patch) {
                Ok(page) => ok(serde_json::json!({ "success": true, "page": page })),
                Err(ChangeError::Invalid(e)) => field_error(e.field, &e.message),
                Err(ChangeError::Save(e)) => {
                    log_error!("{e}");
                    error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string())
                }
            }
        });
    all.or(page).unify()
}

/// The JSON of `body`, or a 400 naming the field whose value has the wrong type (or that is
/// not a setting at all).
fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, warp::reply::Response> {
    let mut json = serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(&mut json).map_err(|e| {
        let field = e.path().iter().next().map(|segment| segment.to_string());
        let message = e.inner().to_string();
        match field {
            Some(field) if !field.is_empty() && field != "?" => field_error(&field, &message),
            _ => error(
                StatusCode::BAD_REQUEST,
                &format!("bad request body: {message}"),
            ),
        }
    })
}
