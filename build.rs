//! Checks that the system FFmpeg development libraries that `ffmpeg-next` links against are
//! installed (FFmpeg 5.1 or newer), and fails with the exact `apt-get install` line if not. The
//! check lives in `ci/ffmpeg-preflight`, whose own build script runs it before `ffmpeg-sys-next`
//! gets the chance to fail with a less helpful message.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_LIBDIR");
    ffmpeg_preflight::require_ffmpeg();
}
