//! Checks, before anything is compiled, that the system FFmpeg development libraries that
//! `ffmpeg-next` links against are installed, and says exactly how to install them if not.

const LIBRARIES: &[&str] = &[
    "libavcodec",
    "libavformat",
    "libavutil",
    "libswscale",
    "libswresample",
    "libavfilter",
    "libavdevice",
];

const APT_LINE: &str = "sudo apt-get install -y libavcodec-dev libavformat-dev libavutil-dev \
libswscale-dev libswresample-dev libavfilter-dev libavdevice-dev clang libclang-dev pkg-config";

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let missing: Vec<&str> = LIBRARIES
        .iter()
        .copied()
        .filter(|lib| {
            pkg_config::Config::new()
                .cargo_metadata(false)
                .probe(lib)
                .is_err()
        })
        .collect();
    if !missing.is_empty() {
        // pkg-config itself missing makes every probe fail: the apt line installs it too.
        let what = format!("not found by pkg-config: {}", missing.join(", "));
        eprintln!("\nselfcast needs the FFmpeg development libraries (FFmpeg 5.1 or newer): {what}.");
        eprintln!("On Debian 12 / Ubuntu install them with:\n\n    {APT_LINE}\n");
        panic!("{what}; install them with: {APT_LINE}");
    }
}
