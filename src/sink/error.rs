//! What a destination reports when it fails, in plain words: every backend returns it, the
//! uploader logs it and `/api/status` shows it.

/// A put or delete that failed, in plain words (it is shown in `/api/status` and the log).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct SinkError(pub String);

/// The innermost cause of `error` (e.g. "Connection refused (os error 111)" under the layers a
/// client wraps around it).
pub fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = error;
    while let Some(source) = cause.source() {
        cause = source;
    }
    cause.to_string()
}
