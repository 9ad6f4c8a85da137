// The check itself, shared by this crate's build script (`include!`) and its library.

/// The libraries `ffmpeg-next`'s default features link.
pub const LIBRARIES: &[&str] = &[
    "libavcodec",
    "libavformat",
    "libavutil",
    "libswscale",
    "libswresample",
    "libavfilter",
    "libavdevice",
];

/// FFmpeg 5.1 (Debian 12) ships libavcodec 59.37.
pub const MINIMUM_AVCODEC: (u32, u32) = (59, 37);

pub const APT_LINE: &str = "sudo apt-get install -y libavcodec-dev libavformat-dev libavutil-dev \
libswscale-dev libswresample-dev libavfilter-dev libavdevice-dev clang libclang-dev pkg-config";

/// Fails the build (exit status 1) with the install line when a library is missing or too old.
pub fn require_ffmpeg() {
    let missing: Vec<&str> = LIBRARIES
        .iter()
        .copied()
        .filter(|lib| {
            pkg_config::Config::new()
                .cargo_metadata(false)
                .env_metadata(false)
                .probe(lib)
                .is_err()
        })
        .collect();
    if !missing.is_empty() {
        // pkg-config itself missing makes every probe fail: the apt line installs it too.
        fail(&format!("not found by pkg-config: {}", missing.join(", ")));
    }
    if let Ok(avcodec) = pkg_config::Config::new()
        .cargo_metadata(false)
        .env_metadata(false)
        .probe("libavcodec")
    {
        let mut parts = avcodec
            .version
            .split('.')
            .map(|n| n.parse::<u32>().unwrap_or(0));
        let found = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
        if found < MINIMUM_AVCODEC {
            fail(&format!(
                "libavcodec {} is older than FFmpeg 5.1 (libavcodec {}.{})",
                avcodec.version, MINIMUM_AVCODEC.0, MINIMUM_AVCODEC.1
            ));
        }
    }
}

fn fail(what: &str) -> ! {
    eprintln!("\nselfcast needs the FFmpeg development libraries (FFmpeg 5.1 or newer): {what}.");
    eprintln!("On Debian 12 / Ubuntu install them with:\n\n    {APT_LINE}\n");
    std::process::exit(1);
}
