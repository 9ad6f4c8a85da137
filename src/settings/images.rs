//! The page's two images the owner uploads from the console: the logo and the offline image
//! (shown over the player while the stream is offline). Each is checked by decoding
//! ([`crate::transcode::still`]), kept as a file in `data_dir/images/` (`logo.png`,
//! `offline.jpg`...: the extension is the format) and held in memory to be served, so a
//! request for it costs no file access. At start-up the files there are read back and checked
//! again; one that no longer checks out is reported and left unused.

use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};

use bytes::Bytes;
use serde::Serialize;

use crate::owner_file;
pub use crate::transcode::still::StillFormat;
use crate::transcode::still::{self, Still, StillError};

/// The largest upload, in bytes.
pub const MAX_IMAGE_BYTES: usize = 4 * 1024 * 1024;

/// Which image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    Logo,
    Offline,
}

impl Slot {
    pub const ALL: [Slot; 2] = [Slot::Logo, Slot::Offline];

    /// As the API and the file names say it.
    pub fn name(self) -> &'static str {
        match self {
            Slot::Logo => "logo",
            Slot::Offline => "offline",
        }
    }

    pub fn of_name(name: &str) -> Option<Slot> {
        Slot::ALL.into_iter().find(|slot| slot.name() == name)
    }

    /// Where viewers fetch it.
    pub fn path(self) -> &'static str {
        match self {
            Slot::Logo => "/logo",
            Slot::Offline => "/offline-image",
        }
    }
}

/// One image in use.
#[derive(Debug, Clone)]
pub struct PageImage {
    pub bytes: Bytes,
    pub still: Still,
    /// Changes with the contents: the viewer page asks for `?v=<version>`.
    pub version: String,
}

impl PageImage {
    fn new(bytes: Bytes, still: Still) -> Self {
        let version = format!("{:016x}", fnv1a(&bytes));
        PageImage {
            bytes,
            still,
            version,
        }
    }

    /// The address viewers load it from, new for every new image.
    pub fn url(&self, slot: Slot) -> String {
        format!("{}?v={}", slot.path(), self.version)
    }
}

/// What the console shows of an image.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageInfo {
    pub url: String,
    pub content_type: &'static str,
    pub width: u32,
    pub height: u32,
    pub bytes: usize,
}

impl ImageInfo {
    pub fn of(slot: Slot, image: &PageImage) -> Self {
        ImageInfo {
            url: image.url(slot),
            content_type: image.still.format.content_type(),
            width: image.still.width,
            height: image.still.height,
            bytes: image.bytes.len(),
        }
    }
}

/// Why an upload was not taken (nothing changed).
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("the image is {0} bytes; at most {MAX_IMAGE_BYTES} (4 MiB)")]
    TooLarge(usize),
    #[error(transparent)]
    Invalid(#[from] StillError),
    #[error("cannot save the image in {path}: {source}")]
    Save {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The images in use and where their files are.
pub struct PageImages {
    dir: PathBuf,
    current: RwLock<[Option<Arc<PageImage>>; 2]>,
}

impl PageImages {
    /// The images in `data_dir/images/`; files that do not check out are returned as problems.
    pub fn load(data_dir: &Path) -> (Self, Vec<String>) {
        let dir = data_dir.join("images");
        let mut problems = Vec::new();
        let mut current: [Option<Arc<PageImage>>; 2] = [None, None];
        for slot in Slot::ALL {
            for format in StillFormat::ALL {
                let path = file_of(&dir, slot, format);
                let bytes = match std::fs::read(&path) {
                    Ok(bytes) => bytes,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => {
                        problems.push(format!("{}: cannot be read ({e})", path.display()));
                        continue;
                    }
                };
                match checked(&bytes, format) {
                    Ok(still) if current[index(slot)].is_none() => {
                        current[index(slot)] =
                            Some(Arc::new(PageImage::new(Bytes::from(bytes), still)));
                    }
                    Ok(_) => problems.push(format!(
                        "{}: another {} image is in use; remove one of them",
                        path.display(),
                        slot.name()
                    )),
                    Err(e) => problems.push(format!("{}: not used ({e})", path.display())),
                }
            }
        }
        let images = PageImages {
            dir,
            current: RwLock::new(current),
        };
        (images, problems)
    }

    pub fn get(&self, slot: Slot) -> Option<Arc<PageImage>> {
        self.current.read().unwrap_or_else(PoisonError::into_inner)[index(slot)].clone()
    }

    /// Checks `bytes` (sent as `declared`) and puts them in use: the file is written (whole,
    /// atomically) before the image is served. Blocking: decodes and writes a file.
    pub fn set(
        &self,
        slot: Slot,
        bytes: Bytes,
        declared: StillFormat,
    ) -> Result<Arc<PageImage>, ImageError> {
        let still = checked(&bytes, declared)?;
        let image = Arc::new(PageImage::new(bytes, still));
        // Held while the files change, so two uploads cannot interleave theirs.
        let mut current = self.current.write().unwrap_or_else(PoisonError::into_inner);
        let path = file_of(&self.dir, slot, still.format);
        owner_file::replace(&path, &image.bytes, None).map_err(|source| ImageError::Save {
            path: path.clone(),
            source,
        })?;
        self.remove_files(slot, Some(still.format));
        current[index(slot)] = Some(Arc::clone(&image));
        Ok(image)
    }

    /// No image in `slot` any more; whether there was one.
    pub fn remove(&self, slot: Slot) -> bool {
        let mut current = self.current.write().unwrap_or_else(PoisonError::into_inner);
        self.remove_files(slot, None);
        current[index(slot)].take().is_some()
    }

    /// Deletes the slot's files but the one of `keep`.
    fn remove_files(&self, slot: Slot, keep: Option<StillFormat>) {
        for format in StillFormat::ALL {
            if Some(format) != keep {
                let path = file_of(&self.dir, slot, format);
                if let Err(e) = std::fs::remove_file(&path) {
                    if e.kind() != std::io::ErrorKind::NotFound {
                        tracing::warn!("cannot remove {}: {e}", path.display());
                    }
                }
            }
        }
    }
}

fn checked(bytes: &[u8], declared: StillFormat) -> Result<Still, ImageError> {
    if bytes.len() > MAX_IMAGE_BYTES {
        return Err(ImageError::TooLarge(bytes.len()));
    }
    Ok(still::check(bytes, declared)?)
}

fn index(slot: Slot) -> usize {
    match slot {
        Slot::Logo => 0,
        Slot::Offline => 1,
    }
}

fn file_of(dir: &Path, slot: Slot, format: StillFormat) -> PathBuf {
    dir.join(format!("{}.{}", slot.name(), format.extension()))
}

/// FNV-1a, 64 bits: a version that changes with the bytes (not a defence against anyone).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png() -> Bytes {
        Bytes::from_static(&crate::transcode::still::TWO_PIXELS_PNG)
    }

    #[test]
    fn an_image_is_kept_across_a_restart_and_removed_with_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let (images, problems) = PageImages::load(dir.path());
        assert!(problems.is_empty() && images.get(Slot::Logo).is_none());
        let set = images.set(Slot::Logo, png(), StillFormat::Png).unwrap();
        assert_eq!((set.still.width, set.still.height), (2, 1));
        assert!(set.url(Slot::Logo).starts_with("/logo?v="));
        assert!(dir.path().join("images/logo.png").is_file());

        let (again, problems) = PageImages::load(dir.path());
        assert!(problems.is_empty(), "{problems:?}");
        let kept = again.get(Slot::Logo).unwrap();
        assert_eq!(kept.bytes, png());
        assert_eq!(kept.version, set.version);
        assert!(again.get(Slot::Offline).is_none());

        assert!(again.remove(Slot::Logo));
        assert!(!dir.path().join("images/logo.png").exists());
        assert!(!again.remove(Slot::Logo));
    }

    #[test]
    fn a_refused_upload_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let (images, _) = PageImages::load(dir.path());
        images.set(Slot::Offline, png(), StillFormat::Png).unwrap();
        let svg =
            Bytes::from_static(b"<svg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'/>");
        assert!(matches!(
            images.set(Slot::Offline, svg, StillFormat::Png),
            Err(ImageError::Invalid(StillError::UnknownFormat))
        ));
        let big = Bytes::from(vec![0u8; MAX_IMAGE_BYTES + 1]);
        assert!(matches!(
            images.set(Slot::Offline, big, StillFormat::Png),
            Err(ImageError::TooLarge(_))
        ));
        assert_eq!(images.get(Slot::Offline).unwrap().bytes, png());
    }

    #[test]
    fn a_file_that_no_longer_checks_out_is_reported_and_not_used() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("images")).unwrap();
        std::fs::write(dir.path().join("images/logo.png"), b"\x89PNG\r\n\x1a\ntorn").unwrap();
        let (images, problems) = PageImages::load(dir.path());
        assert!(images.get(Slot::Logo).is_none());
        assert_eq!(problems.len(), 1);
        assert!(problems[0].contains("logo.png: not used"), "{problems:?}");
    }
}
