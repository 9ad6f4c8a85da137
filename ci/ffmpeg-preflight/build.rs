//! Runs the FFmpeg check as early as cargo allows: see src/lib.rs for why.
include!("src/check.rs");

fn main() {
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_LIBDIR");
    require_ffmpeg();
}
