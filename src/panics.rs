//! Panics the server survives: [`catch`] runs a future (one RTMP connection's task) so that a
//! panic inside it ends that future only and comes back as a [`ContainedPanic`] value, which
//! the caller logs as one short, rate-limited line with the peer's address.
//!
//! Why a hook ([`install_hook`], called once by `main`): before `catch_unwind` sees a panic the
//! panic hook runs, and Rust's default hook prints a multi-line report to stderr for every
//! panic, unthrottled; with `RUST_BACKTRACE=1` (or `full`) it also captures and symbolizes a
//! backtrace, which loads the binary's debug info for good (RSS from ~100 to ~320 MB on the
//! first one). An outsider who can trigger a panic (hostile RTMP input reaching `rml_rtmp`)
//! must get neither. Our hook only notes where a contained panic happened (file:line, for the
//! caller's log line) and never captures a backtrace; every other panic, one we do not catch,
//! still goes to the default hook, backtrace and all.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::fmt;
use std::future::Future;
use std::panic::{self, AssertUnwindSafe};
use std::pin::pin;
use std::sync::Once;
use std::task::Poll;

thread_local! {
    /// Set while a [`catch`]ed future is being polled on this thread.
    static CONTAINED: Cell<bool> = const { Cell::new(false) };
    /// Where the last contained panic on this thread happened.
    static LOCATION: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// At most this much of a panic message is kept (it may quote hostile input).
const MAX_MESSAGE: usize = 200;

/// A panic that [`catch`] stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainedPanic {
    pub message: String,
    /// `file:line:column`, when the hook is installed.
    pub location: Option<String>,
}

impl fmt::Display for ContainedPanic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.location {
            Some(location) => write!(f, "panicked at {location}: {}", self.message),
            None => write!(f, "panicked: {}", self.message),
        }
    }
}

/// Installs the panic hook described in the module docs (once; later calls do nothing).
pub fn install_hook() {
    static INSTALLED: Once = Once::new();
    INSTALLED.call_once(|| {
        let default_hook = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if CONTAINED.get() {
                let location = info.location().map(ToString::to_string);
                LOCATION.set(location);
            } else {
                default_hook(info);
            }
        }));
    });
}

/// Runs `future`; a panic while it is polled ends it and is returned instead of unwinding
/// further. The future must not be relied on after a panic (it is dropped).
pub async fn catch<F: Future>(future: F) -> Result<F::Output, ContainedPanic> {
    let mut future = pin!(future);
    std::future::poll_fn(move |cx| {
        let was_contained = CONTAINED.replace(true);
        let polled = panic::catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(cx)));
        CONTAINED.set(was_contained);
        match polled {
            Ok(Poll::Ready(output)) => Poll::Ready(Ok(output)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(payload) => Poll::Ready(Err(ContainedPanic {
                message: cut(panic_message(&*payload)),
                location: LOCATION.take(),
            })),
        }
    })
    .await
}

/// The text of a panic payload (`panic!("...")` gives a `&str` or a `String`).
fn panic_message(payload: &(dyn Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "unknown panic payload"
    }
}

fn cut(message: &str) -> String {
    match message.char_indices().nth(MAX_MESSAGE) {
        Some((end, _)) => format!("{}...", &message[..end]),
        None => message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panic_payloads() {
        let payload: Box<dyn Any + Send> = Box::new("index out of bounds");
        assert_eq!(panic_message(&*payload), "index out of bounds");
        let payload: Box<dyn Any + Send> = Box::new(String::from("formatted"));
        assert_eq!(panic_message(&*payload), "formatted");
        let payload: Box<dyn Any + Send> = Box::new(42);
        assert_eq!(panic_message(&*payload), "unknown panic payload");
        assert_eq!(cut(&"é".repeat(300)), format!("{}...", "é".repeat(200)));
    }

    #[tokio::test]
    async fn a_panic_becomes_a_value_with_its_location() {
        install_hook();
        let caught = catch(async {
            tokio::task::yield_now().await;
            let arguments: Vec<u8> = Vec::new();
            let _ = arguments[..3].len();
        })
        .await
        .unwrap_err();
        assert!(caught.message.contains("out of range"), "{caught}");
        let location = caught.location.as_deref().unwrap_or_default();
        assert!(location.starts_with("src/panics.rs:"), "{caught}");
        assert!(!CONTAINED.get(), "the flag is cleared after the poll");
        assert_eq!(catch(async { 7 }).await, Ok(7));
    }
}
