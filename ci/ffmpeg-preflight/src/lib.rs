//! Checks, at build time, that the system FFmpeg development libraries `ffmpeg-next` links
//! against are installed, and says exactly how to install them if not.
//!
//! Why a crate of its own: cargo runs selfcast's `build.rs` only after the build scripts of its
//! dependencies, so `ffmpeg-sys-next` would fail first with a generic "FFmpeg not found". This
//! crate is a build-dependency of selfcast; its own build script (which includes this file)
//! needs nothing but `pkg-config` and so runs, and fails with the apt line, long before
//! `ffmpeg-sys-next` (which first compiles bindgen). selfcast's `build.rs` calls it again.

mod check;

pub use check::{require_ffmpeg, APT_LINE, LIBRARIES, MINIMUM_AVCODEC};
