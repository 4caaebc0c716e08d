//! File helpers: atomic writes (temp file + rename, so a crash never leaves half a file), the
//! one way an input file is read (regular files only, each kind up to a limit) and image
//! loading with messages that say what is wrong.

use crate::error::{Error, Result};
use image::RgbImage;
use std::path::Path;

/// Whether two existing paths name one folder (through links and `..`); false when either
/// does not exist.
pub fn same_folder(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// Fault injection for the kill soak (`just soak`): with `DYNABOOT_SLOW_WRITES_MS` set, every
/// atomic write waits that long between its finished temp file and the rename, so that kills
/// at random moments land inside writes. Unset (always, outside that test), it costs nothing.
fn pause_before_rename() {
    static PAUSE: std::sync::OnceLock<Option<std::time::Duration>> = std::sync::OnceLock::new();
    let pause = PAUSE.get_or_init(|| {
        std::env::var("DYNABOOT_SLOW_WRITES_MS")
            .ok()
            .and_then(|ms| ms.parse().ok())
            .map(std::time::Duration::from_millis)
    });
    if let Some(p) = pause {
        std::thread::sleep(*p);
    }
}

/// The temp file an atomic write of `path` goes through (`.NAME.PID.tmp` beside it, the
/// pattern [`remove_stale_temps`] clears), its folder created.
fn temp_beside(path: &Path) -> Result<std::path::PathBuf> {
    // The rename would replace whatever is there: as root, even /dev/null.
    if let Ok(meta) = std::fs::metadata(path)
        && !meta.is_file()
    {
        return Err(Error::Invalid(format!(
            "{} exists and is not a file (a folder or a device): give the path of a file",
            path.display()
        )));
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok(path.with_file_name(format!(".{name}.{}.tmp", std::process::id())))
}

/// Writes `bytes` to `path` atomically: a sibling temp file, fsync, then rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let tmp = temp_beside(path)?;
    let mut f = std::fs::File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
    f.write_all(bytes)
        .and_then(|_| f.sync_all())
        .map_err(|e| Error::io(&tmp, e))?;
    drop(f);
    pause_before_rename();
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}

/// Removes the temp files that writes killed midway left in `dir` (`.NAME.PID.tmp`, see
/// [`write_atomic`]); returns how many. Only a run that owns `dir` should call it.
pub(crate) fn remove_stale_temps(dir: &Path) -> Result<usize> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(0);
    };
    let mut removed = 0;
    for entry in entries {
        let path = entry.map_err(|e| Error::io(dir, e))?.path();
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        let stale = name.starts_with('.')
            && name
                .strip_suffix(".tmp")
                .and_then(|n| n.rsplit_once('.'))
                .is_some_and(|(_, pid)| !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()));
        if stale && path.is_file() {
            std::fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// Writes named tensors as a safetensors file with `metadata` in its header, atomically,
/// readable as any file the user creates (the safetensors crate writes through a private temp
/// file, mode 0600, which would keep a checkpoint from a web server or a colleague).
pub fn write_safetensors(
    path: &Path,
    tensors: &[(String, candle_core::Tensor)],
    metadata: Option<std::collections::HashMap<String, String>>,
) -> Result<()> {
    let map: std::collections::HashMap<String, candle_core::Tensor> =
        tensors.iter().cloned().collect();
    let tmp = temp_beside(path)?;
    let usual = std::fs::File::create(&tmp)
        .and_then(|f| f.metadata())
        .map_err(|e| Error::io(&tmp, e))?
        .permissions();
    if let Err(e) = safetensors::serialize_to_file(&map, metadata, &tmp) {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::Invalid(format!("{}: {e}", path.display())));
    }
    std::fs::set_permissions(&tmp, usual).map_err(|e| Error::io(&tmp, e))?;
    pause_before_rename();
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}

/// What an input file holds; each kind is read whole only up to its limit.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Input {
    /// An image (PNG or JPEG).
    Image,
    /// JSON: a config, a tokenizer, a dataset's rows, a record, a cache.
    Json,
    /// A model's weights (safetensors).
    Weights,
}

impl Input {
    /// The most bytes read of this kind.
    pub(crate) const fn limit(self) -> u64 {
        match self {
            Input::Image => 64 << 20,
            Input::Json => 1 << 30,
            Input::Weights => 64 << 30,
        }
    }

    fn what(self) -> &'static str {
        match self {
            Input::Image => "an image",
            Input::Json => "a JSON file",
            Input::Weights => "a safetensors file",
        }
    }
}

/// What a path that is not a regular file is, in words.
fn not_a_file(meta: &std::fs::Metadata) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        let t = meta.file_type();
        if t.is_char_device() || t.is_block_device() {
            return "a device";
        }
        if t.is_fifo() {
            return "a named pipe";
        }
        if t.is_socket() {
            return "a socket";
        }
    }
    if meta.is_dir() {
        "a folder"
    } else {
        "not a regular file"
    }
}

/// Reads the input file at `path` whole, the one way every input is read: what is not a
/// regular file (a folder, a device such as /dev/zero, a named pipe) and a file over its
/// kind's limit are refused before anything is read, naming the path and the limit; no more
/// than the limit is read even from a file that grows meanwhile.
pub(crate) fn read_input(path: &Path, kind: Input) -> Result<Vec<u8>> {
    use std::io::Read;
    let refuse = |m: String| Error::io(path, std::io::Error::other(m));
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    if !meta.is_file() {
        return Err(refuse(format!(
            "is {}; give {}",
            not_a_file(&meta),
            kind.what()
        )));
    }
    let limit = kind.limit();
    let too_large = |len: u64| {
        refuse(format!(
            "is {} MiB; {} is read up to {} MiB",
            len >> 20,
            kind.what(),
            limit >> 20
        ))
    };
    if meta.len() > limit {
        return Err(too_large(meta.len()));
    }
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io(path, e))?;
    if bytes.len() as u64 > limit {
        return Err(too_large(bytes.len() as u64));
    }
    Ok(bytes)
}

/// [`read_input`] as UTF-8 text.
pub(crate) fn read_input_text(path: &Path, kind: Input) -> Result<String> {
    String::from_utf8(read_input(path, kind)?).map_err(|e| {
        Error::io(
            path,
            std::io::Error::other(format!(
                "is not UTF-8 text (byte {}); give {}",
                e.utf8_error().valid_up_to(),
                kind.what()
            )),
        )
    })
}

/// The largest side of an image read, in pixels.
const MAX_IMAGE_SIDE: u32 = 8192;

/// Decodes an image file's bytes, refusing one larger than [`MAX_IMAGE_SIDE`] on a side (a
/// small file can claim a huge picture) with a message that says so.
fn decode_image(path: &Path, bytes: &[u8]) -> Result<image::DynamicImage> {
    let bad = |message: String| Error::Image {
        path: path.into(),
        message,
    };
    let mut reader = image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| bad(format!("cannot be read ({e})")))?;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_IMAGE_SIDE);
    limits.max_image_height = Some(MAX_IMAGE_SIDE);
    reader.limits(limits);
    reader.decode().map_err(|e| match e {
        image::ImageError::Limits(_) => bad(format!(
            "is larger than {MAX_IMAGE_SIDE}x{MAX_IMAGE_SIDE} pixels (or claims to be); \
             resize it first"
        )),
        e => bad(format!("cannot decode ({e}); PNG and JPEG are supported")),
    })
}

/// Writes `img` as a PNG at `path`, atomically.
pub fn save_png(path: &Path, img: &RgbImage) -> Result<()> {
    write_atomic(path, &crate::png::png_bytes(img)?)
}

/// Loads a PNG or JPEG (any format the `image` crate detects) as 8-bit RGB.
pub(crate) fn load_rgb(path: &Path) -> Result<RgbImage> {
    let bytes = read_input(path, Input::Image)?;
    Ok(decode_image(path, &bytes)?.to_rgb8())
}

/// An RGB image of any size (PNG or JPEG); other channel counts are an error naming the file.
pub fn load_rgb_image(path: &Path) -> Result<RgbImage> {
    let bytes = read_input(path, Input::Image)?;
    let img = decode_image(path, &bytes)?;
    let channels = img.color().channel_count();
    if channels != 3 {
        return Err(Error::Image {
            path: path.into(),
            message: format!(
                "has {channels} channel(s) ({:?}); the model takes 3-channel RGB: convert it first \
                 (e.g. `convert in.png -alpha off -type truecolor out.png`)",
                img.color()
            ),
        });
    }
    Ok(img.to_rgb8())
}

/// Loads an image a model takes: 8-bit RGB (PNG or JPEG), `size` x `size`. Other channel
/// counts are refused rather than silently converted (an alpha channel or a grey image is
/// rarely what the user meant to send).
pub fn load_model_image(path: &Path, size: u32) -> Result<RgbImage> {
    check_size(path, load_rgb_image(path)?, size)
}

fn check_size(path: &Path, img: RgbImage, size: u32) -> Result<RgbImage> {
    if img.dimensions() != (size, size) {
        let (w, h) = img.dimensions();
        return Err(Error::Image {
            path: path.into(),
            message: format!("is {w}x{h} but the model expects {size}x{size}; resize it first"),
        });
    }
    Ok(img)
}

/// `target` as a path relative to the folder `from` (both must exist), e.g. `../vq`.
pub fn relative_path(from: &Path, target: &Path) -> Result<std::path::PathBuf> {
    let a = from.canonicalize().map_err(|e| Error::io(from, e))?;
    let b = target.canonicalize().map_err(|e| Error::io(target, e))?;
    let common = a
        .components()
        .zip(b.components())
        .take_while(|(x, y)| x == y)
        .count();
    let mut rel = std::path::PathBuf::new();
    for _ in a.components().skip(common) {
        rel.push("..");
    }
    for c in b.components().skip(common) {
        rel.push(c);
    }
    Ok(rel)
}

/// Loads an image and checks it is `size` x `size`.
pub(crate) fn load_rgb_sized(path: &Path, size: u32) -> Result<RgbImage> {
    check_size(path, load_rgb(path)?, size)
}

/// The guard of every output folder: `earlier` are the files (and folders) an earlier run of
/// the same command wrote into `out`. None: nothing to do. Otherwise refused, naming the first
/// and `what` they are, unless `force`: then they are removed first, so that a run stopped
/// early never leaves an earlier run's files beside its own. `instead` is another way out the
/// refusal offers (e.g. "--resume to continue it").
pub fn clear_earlier_output(
    out: &Path,
    earlier: &[std::path::PathBuf],
    what: &str,
    instead: Option<&str>,
    force: bool,
) -> Result<()> {
    lock_output_folder(out)?;
    let Some(first) = earlier.first() else {
        return Ok(());
    };
    if !force {
        return Err(earlier_output_refused(out, first, what, instead));
    }
    for path in earlier {
        let removed = if path.is_dir() {
            std::fs::remove_dir_all(path)
        } else {
            std::fs::remove_file(path)
        };
        removed.map_err(|e| Error::io(path, e))?;
    }
    Ok(())
}

/// Claims the output folder `out` (where it exists) for this process until it exits, so that
/// two runs never write into one folder at once: a second run is refused while the first is
/// alive. An advisory lock on the folder itself: nothing is added to it, and the lock goes
/// with the process however it ends. Claiming a folder this process holds again is allowed.
pub fn lock_output_folder(out: &Path) -> Result<()> {
    use std::sync::{Mutex, OnceLock};
    static HELD: OnceLock<Mutex<Vec<(std::path::PathBuf, std::fs::File)>>> = OnceLock::new();
    if !out.is_dir() {
        // Nothing to claim yet, and nothing is made before the command's checks have passed.
        return Ok(());
    }
    let canonical = out.canonicalize().map_err(|e| Error::io(out, e))?;
    let mut held = HELD
        .get_or_init(Default::default)
        .lock()
        .expect("not poisoned");
    if held.iter().any(|(p, _)| *p == canonical) {
        return Ok(());
    }
    let folder = std::fs::File::open(&canonical).map_err(|e| Error::io(out, e))?;
    match folder.try_lock() {
        Ok(()) => {
            held.push((canonical, folder));
            Ok(())
        }
        Err(std::fs::TryLockError::WouldBlock) => Err(Error::Invalid(format!(
            "--out {} is being written by another dynaboot run right now; wait for it to end \
             or choose another --out",
            out.display()
        ))),
        Err(std::fs::TryLockError::Error(e)) => Err(Error::io(out, e)),
    }
}

/// The refusal of [`clear_earlier_output`]: `out` holds `what`, of which `first` is a file.
pub fn earlier_output_refused(
    out: &Path,
    first: &Path,
    what: &str,
    instead: Option<&str>,
) -> Error {
    let name = first.strip_prefix(out).unwrap_or(first);
    Error::Invalid(format!(
        "--out {} already holds {what} ({}); pass {}--force to replace it, or choose another \
         --out",
        out.display(),
        name.display(),
        instead.map(|i| format!("{i}, ")).unwrap_or_default()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_that_are_not_files_or_too_large_are_refused_before_reading() {
        let dir = tempfile::tempdir().unwrap();
        let says = |path: &Path, kind: Input| read_input(path, kind).unwrap_err().to_string();
        // A device that never ends, a folder, a named pipe with no writer (opening it would
        // block): refused at once, by what they are.
        let e = says(Path::new("/dev/zero"), Input::Json);
        assert!(e.contains("/dev/zero") && e.contains("a device"), "{e}");
        assert!(says(dir.path(), Input::Image).contains("a folder"));
        let fifo = dir.path().join("pipe");
        if std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .is_ok_and(|s| s.success())
        {
            assert!(says(&fifo, Input::Image).contains("a named pipe"));
        }
        // Larger than the kind's limit (a sparse file: nothing is written or read).
        let big = dir.path().join("big.png");
        std::fs::File::create(&big)
            .unwrap()
            .set_len(Input::Image.limit() + 1)
            .unwrap();
        let e = says(&big, Input::Image);
        assert!(e.contains("big.png") && e.contains("up to 64 MiB"), "{e}");
        // A small PNG that claims a huge picture is refused before it is decoded.
        let mut bomb = crate::png::png_bytes(&RgbImage::new(1, 1)).unwrap();
        bomb[16..24].copy_from_slice(&[0, 1, 0, 0, 0, 1, 0, 0]); // IHDR: 65536 x 65536
        let crc = crc32(&bomb[12..29]);
        bomb[29..33].copy_from_slice(&crc.to_be_bytes());
        let path = dir.path().join("bomb.png");
        std::fs::write(&path, &bomb).unwrap();
        let e = load_rgb_image(&path).unwrap_err().to_string();
        assert!(e.contains("larger than 8192x8192"), "{e}");
        // Text that is not UTF-8 says so.
        let latin = dir.path().join("config.json");
        std::fs::write(&latin, b"{\"name\": \"caf\xe9\"}").unwrap();
        let e = read_input_text(&latin, Input::Json)
            .unwrap_err()
            .to_string();
        assert!(e.contains("not UTF-8"), "{e}");
    }

    /// The CRC-32 of a PNG chunk (type and data).
    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &b in bytes {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    #[test]
    fn only_the_temp_files_of_killed_writes_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let keep = [
            ".hidden",
            "a.tmp",
            ".x.tmp",
            ".model.safetensors.12a.tmp",
            "model.safetensors",
        ];
        let stale = [".model.safetensors.4242.tmp", ".metrics.jsonl.7.tmp"];
        for name in keep.iter().chain(&stale) {
            std::fs::write(dir.path().join(name), b"x").unwrap();
        }
        assert_eq!(remove_stale_temps(dir.path()).unwrap(), 2);
        for name in keep {
            assert!(dir.path().join(name).exists(), "{name} was removed");
        }
        for name in stale {
            assert!(!dir.path().join(name).exists(), "{name} was left");
        }
        assert_eq!(remove_stale_temps(&dir.path().join("absent")).unwrap(), 0);
    }

    #[cfg(unix)]
    #[test]
    fn checkpoints_get_the_permissions_of_any_new_file() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let t = candle_core::Tensor::zeros(2, candle_core::DType::F32, &candle_core::Device::Cpu)
            .unwrap();
        write_safetensors(
            &dir.path().join("model.safetensors"),
            &[("w".into(), t)],
            None,
        )
        .unwrap();
        write_atomic(&dir.path().join("config.json"), b"{}").unwrap();
        let mode = |n: &str| {
            let m = std::fs::metadata(dir.path().join(n)).unwrap();
            m.permissions().mode() & 0o777
        };
        // Under the usual umask 022: 0644 both, where the safetensors crate alone gives 0600.
        assert_eq!(mode("model.safetensors"), mode("config.json"));
    }

    #[test]
    fn model_images_must_be_rgb_of_the_right_size() {
        let dir = tempfile::tempdir().unwrap();
        let rgb = dir.path().join("rgb.png");
        save_png(&rgb, &RgbImage::new(8, 8)).unwrap();
        assert!(load_model_image(&rgb, 8).is_ok());
        let e = load_model_image(&rgb, 16).unwrap_err().to_string();
        assert!(
            e.contains("8x8") && e.contains("16x16") && e.contains("rgb.png"),
            "{e}"
        );
        let rgba = dir.path().join("rgba.png");
        image::RgbaImage::new(8, 8).save(&rgba).unwrap();
        let e = load_model_image(&rgba, 8).unwrap_err().to_string();
        assert!(e.contains("4 channel") && e.contains("rgba.png"), "{e}");
        let grey = dir.path().join("grey.png");
        image::GrayImage::new(8, 8).save(&grey).unwrap();
        assert!(
            load_model_image(&grey, 8)
                .unwrap_err()
                .to_string()
                .contains("1 channel")
        );
    }

    #[test]
    fn relative_paths_between_folders() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("runs/world"), dir.path().join("models/vq"));
        std::fs::create_dir_all(&a).unwrap();
        std::fs::create_dir_all(&b).unwrap();
        assert_eq!(relative_path(&a, &b).unwrap(), Path::new("../../models/vq"));
        assert_eq!(
            a.join(relative_path(&a, &b).unwrap())
                .canonicalize()
                .unwrap(),
            b.canonicalize().unwrap()
        );
    }
}
