//! `POST /api/admin/images/{logo,offline}` (the image itself as the body, sent as `image/png`,
//! `image/jpeg` or `image/webp`) and `DELETE` of the same: the page's logo and offline image
//! ([`crate::settings::images`]). A file that is not what it says, or does not decode, is
//! refused with the reason at the field, and the image in use stays.
//!
//! The body is not JSON, but the request is no easier to forge from another site than the
//! JSON ones: an image type is not one a plain form or a no-CORS fetch may send, and the
//! admin routes check the Origin and the session's CSRF token first.

use std::sync::Arc;

use bytes::Bytes;
use serde::Serialize;
use tracing::error as log_error;
use warp::http::StatusCode;
use warp::Filter;

use super::account::field_error;
use super::ok;
use crate::settings::images::{ImageError, ImageInfo, Slot, StillFormat, MAX_IMAGE_BYTES};
use crate::web::chat::error;
use crate::web::{Routes, WebState};

/// The images as `GET /api/admin/settings` shows them: `null` for none.
#[derive(Serialize)]
pub struct ImagesJson {
    logo: Option<ImageInfo>,
    offline: Option<ImageInfo>,
}

impl ImagesJson {
    pub fn of(state: &WebState) -> Self {
        let info = |slot| {
            state
                .settings
                .image(slot)
                .map(|image| ImageInfo::of(slot, &image))
        };
        ImagesJson {
            logo: info(Slot::Logo),
            offline: info(Slot::Offline),
        }
    }
}

pub fn routes(state: Arc<WebState>) -> Routes {
    let with_state = warp::any().map(move || Arc::clone(&state));
    let slot = warp::path!("images" / String).and_then(|name: String| async move {
        Slot::of_name(&name).ok_or_else(warp::reject::not_found)
    });
    let upload = slot
        .clone()
        .and(warp::post())
        .and(with_state.clone())
        .and(warp::header::optional::<String>("content-type"))
        .and(warp::body::content_length_limit(MAX_IMAGE_BYTES as u64))
        .and(warp::body::bytes())
        .and_then(
            |slot: Slot, state: Arc<WebState>, content_type: Option<String>, body: Bytes| async move {
                Ok::<_, warp::Rejection>(upload(slot, state, content_type, body).await)
            },
        );
    let remove = slot.and(warp::delete()).and(with_state).and_then(
        |slot: Slot, state: Arc<WebState>| async move {
            let answer = tokio::task::spawn_blocking(move || {
                let removed = state.settings.remove_image(slot);
                ok(serde_json::json!({ "success": true, "removed": removed }))
            })
            .await
            .unwrap_or_else(|_| failed());
            Ok::<_, warp::Rejection>(answer)
        },
    );
    upload.or(remove).unify().boxed()
}

async fn upload(
    slot: Slot,
    state: Arc<WebState>,
    content_type: Option<String>,
    body: Bytes,
) -> warp::reply::Response {
    let Some(declared) = content_type
        .as_deref()
        .and_then(StillFormat::of_content_type)
    else {
        return error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send the image as image/png, image/jpeg or image/webp",
        );
    };
    // Decoding and writing the file block: off the runtime's threads.
    tokio::task::spawn_blocking(
        move || match state.settings.set_image(slot, body, declared) {
            Ok(image) => ok(serde_json::json!({
                "success": true,
                slot.name(): ImageInfo::of(slot, &image),
            })),
            Err(e @ (ImageError::TooLarge(_) | ImageError::Invalid(_))) => {
                field_error(slot.name(), &e.to_string())
            }
            Err(e @ ImageError::Save { .. }) => {
                log_error!("{e}");
                error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string())
            }
        },
    )
    .await
    .unwrap_or_else(|_| failed())
}

/// A blocking task that panicked (already logged by the panic hook).
fn failed() -> warp::reply::Response {
    error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "the image could not be handled",
    )
}
