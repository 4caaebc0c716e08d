//! Reading and writing datasets on disk: AURORA folders (json + images) and video folders.

use super::aurora::{Row, parse_rows, rows_to_json};
use super::video::{LABELS_FILE, VIDEOS_FILE, VideoLabels, VideoRow, parse_labels, parse_videos};
use crate::error::{Error, Result};
use crate::files::{load_rgb, load_rgb_sized, save_png, write_atomic};
use image::RgbImage;
use std::path::{Path, PathBuf};

/// The json file written by [`AuroraWriter`] and looked for first in a folder.
pub const DATA_FILE: &str = "data.json";

/// An AURORA-format dataset: a json file and the images its rows point to.
#[derive(Clone, Debug)]
pub struct AuroraDataset {
    /// The json file (image paths are relative to its folder).
    pub json: PathBuf,
    /// Its rows, checked.
    pub rows: Vec<Row>,
}

/// The json file of a dataset: `path` itself, or in a folder `data.json`, or its only `.json`.
pub(crate) fn find_json(path: &Path) -> Result<PathBuf> {
    if path.is_file() {
        return Ok(path.to_path_buf());
    }
    if !path.is_dir() {
        return Err(Error::io(
            path,
            std::io::Error::new(std::io::ErrorKind::NotFound, "no such file or folder"),
        ));
    }
    if path.join(DATA_FILE).is_file() {
        return Ok(path.join(DATA_FILE));
    }
    let rd = std::fs::read_dir(path).map_err(|e| Error::io(path, e))?;
    let mut jsons: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension().is_some_and(|x| x == "json")
                && !p.to_string_lossy().ends_with(".labels.json")
        })
        .collect();
    jsons.sort();
    match jsons.len() {
        1 => Ok(jsons.remove(0)),
        0 => Err(Error::Invalid(format!(
            "{}: no AURORA json file in this folder (expected {DATA_FILE})",
            path.display()
        ))),
        _ => Err(Error::Invalid(format!(
            "{}: several json files ({}); pass the one to use",
            path.display(),
            jsons
                .iter()
                .map(|p| p.file_name().unwrap_or_default().to_string_lossy())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

impl AuroraDataset {
    /// Loads a dataset from a json file or a folder holding one.
    pub fn load(path: &Path) -> Result<Self> {
        let json = find_json(path)?;
        let text = crate::files::read_input_text(&json, crate::files::Input::Json)?;
        let rows = parse_rows(&text, &json.display().to_string())?;
        Ok(AuroraDataset { json, rows })
    }

    pub(crate) fn root(&self) -> &Path {
        self.json.parent().unwrap_or(Path::new("."))
    }

    pub(crate) fn resolve(&self, rel: &str) -> PathBuf {
        self.root().join(rel)
    }

    /// Source image of row `i`.
    pub fn input_image(&self, i: usize) -> Result<RgbImage> {
        self.row_image(i, "input", &self.rows[i].input)
    }

    /// Target image of row `i`, if the row has one.
    pub fn output_image(&self, i: usize) -> Result<Option<RgbImage>> {
        self.rows[i]
            .output
            .as_ref()
            .map(|o| self.row_image(i, "output", o))
            .transpose()
    }

    /// The image `field` of row `i` names; an error names the row, the field and the file.
    fn row_image(&self, i: usize, field: &str, rel: &str) -> Result<RgbImage> {
        load_rgb(&self.resolve(rel)).map_err(|e| Error::Malformed {
            file: self.json.display().to_string(),
            row: Some(i),
            field: Some(field.into()),
            message: format!("{e}; image paths are relative to the json file's folder"),
        })
    }
}

/// Writes an AURORA folder: images under `images/`, rows in `data.json` (atomically, at the end).
pub struct AuroraWriter {
    dir: PathBuf,
    rows: Vec<Row>,
}

impl AuroraWriter {
    /// A writer into `dir` (created, with `images/`).
    pub fn new(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir.join("images")).map_err(|e| Error::io(dir, e))?;
        Ok(AuroraWriter {
            dir: dir.to_path_buf(),
            rows: Vec::new(),
        })
    }

    /// Adds a row; its images are written now, under names derived from `id`.
    pub fn push(
        &mut self,
        id: &str,
        input: &RgbImage,
        output: Option<&RgbImage>,
        mut row: Row,
    ) -> Result<()> {
        row.input = format!("images/{id}_input.png");
        save_png(&self.dir.join(&row.input), input)?;
        if let Some(out) = output {
            let rel = format!("images/{id}_output.png");
            save_png(&self.dir.join(&rel), out)?;
            row.output = Some(rel);
        }
        row.id = Some(id.to_string());
        self.rows.push(row);
        Ok(())
    }

    /// Writes `data.json` and gives its path.
    pub fn finish(self) -> Result<PathBuf> {
        let path = self.dir.join(DATA_FILE);
        write_atomic(&path, rows_to_json(&self.rows).as_bytes())?;
        Ok(path)
    }
}

/// Renders triplets and writes them as an AURORA folder with sidecars (row ids `00000`, ...);
/// `progress` gets the number of rows written.
pub fn write_triplets(
    dir: &Path,
    triplets: &[crate::world::Triplet],
    render: crate::world::RenderConfig,
    mut progress: impl FnMut(usize),
) -> Result<PathBuf> {
    use rayon::prelude::*;
    let mut w = AuroraWriter::new(dir)?;
    // Rendering dominates; render a block in parallel, then write it in order.
    let mut done = 0;
    for block in triplets.chunks(64) {
        let images: Vec<(RgbImage, RgbImage)> = block
            .par_iter()
            .map(|t| crate::world::generate::render_triplet(t, render))
            .collect();
        for (t, (src, tgt)) in block.iter().zip(images) {
            write_row(&mut w, done, t, &src, &tgt)?;
            done += 1;
            progress(done);
        }
    }
    w.finish()
}

/// Writes one rendered triplet as row `i`, with its sidecar.
fn write_row(
    w: &mut AuroraWriter,
    i: usize,
    t: &crate::world::Triplet,
    src: &RgbImage,
    tgt: &RgbImage,
) -> Result<()> {
    let row = Row {
        input: String::new(),
        output: None,
        instruction: t.text.clone(),
        family: t.family().name().to_string(),
        id: None,
        sidecar: Some(super::Sidecar {
            action: t.action,
            source_state: t.source.clone(),
            target_state: t.target.clone(),
        }),
    };
    w.push(&format!("{i:05}"), src, Some(tgt), row)
}

/// A folder of unlabelled videos.
#[derive(Clone, Debug)]
pub struct VideoDataset {
    pub(crate) dir: PathBuf,
    /// The videos, in file order.
    pub videos: Vec<VideoRow>,
}

impl VideoDataset {
    /// The videos listed in `dir/videos.json` (their labels are not read).
    pub fn load(dir: &Path) -> Result<Self> {
        let path = dir.join(VIDEOS_FILE);
        let text = crate::files::read_input_text(&path, crate::files::Input::Json)?;
        Ok(VideoDataset {
            dir: dir.to_path_buf(),
            videos: parse_videos(&text, &path.display().to_string())?,
        })
    }

    /// The frames of video `i`, decoded.
    pub fn frames(&self, i: usize) -> Result<Vec<RgbImage>> {
        self.videos[i]
            .frames
            .iter()
            .map(|f| load_rgb(&self.dir.join(f)))
            .collect()
    }

    /// The frames of video `i`, each checked to be `size` x `size` (what a model reads); an
    /// error names the frame's file.
    pub(crate) fn frames_sized(&self, i: usize, size: u32) -> Result<Vec<RgbImage>> {
        self.videos[i]
            .frames
            .iter()
            .map(|f| load_rgb_sized(&self.dir.join(f), size))
            .collect()
    }

    /// The hidden action labels. For evaluating an annotator only; never for training.
    pub fn labels_for_evaluation(&self) -> Result<Vec<VideoLabels>> {
        let path = self.dir.join(LABELS_FILE);
        let text = crate::files::read_input_text(&path, crate::files::Input::Json)?;
        parse_labels(&text, &path.display().to_string())
    }

    /// Writes videos (frames as PNGs) as they come, one in memory at a time, and then their
    /// rows and, separately, their labels.
    pub fn write(
        dir: &Path,
        videos: impl IntoIterator<Item = (String, crate::world::Video)>,
    ) -> Result<Self> {
        let mut rows = Vec::new();
        let mut labels = Vec::new();
        for (id, v) in videos {
            let frames: Vec<String> = (0..v.frames.len())
                .map(|k| format!("{id}/{k:04}.png"))
                .collect();
            {
                use rayon::prelude::*;
                frames
                    .par_iter()
                    .zip(&v.frames)
                    .try_for_each(|(f, img)| save_png(&dir.join(f), img))?;
            }
            labels.push(VideoLabels {
                id: id.clone(),
                segments: v.segments,
            });
            rows.push(VideoRow { id, frames });
        }
        write_atomic(&dir.join(VIDEOS_FILE), json(&rows).as_bytes())?;
        write_atomic(&dir.join(LABELS_FILE), json(&labels).as_bytes())?;
        Ok(VideoDataset {
            dir: dir.to_path_buf(),
            videos: rows,
        })
    }
}

fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string_pretty(value).expect("plain data serialises")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::world::generate::{random_video, rng};
    use crate::world::{RenderConfig, VideoConfig};

    #[test]
    fn writer_and_loader_round_trip_images_and_rows() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = AuroraWriter::new(dir.path()).unwrap();
        let a = RgbImage::from_pixel(8, 8, image::Rgb([1, 2, 3]));
        let b = RgbImage::from_pixel(8, 8, image::Rgb([9, 8, 7]));
        let row = Row {
            input: String::new(),
            output: None,
            instruction: "x".into(),
            family: "kubric".into(),
            id: None,
            sidecar: None,
        };
        w.push("0", &a, Some(&b), row.clone()).unwrap();
        w.push("1", &b, None, row).unwrap();
        w.finish().unwrap();
        let ds = AuroraDataset::load(dir.path()).unwrap();
        assert_eq!(ds.rows.len(), 2);
        assert_eq!(ds.input_image(0).unwrap(), a);
        assert_eq!(ds.output_image(0).unwrap(), Some(b));
        assert_eq!(ds.output_image(1).unwrap(), None);
    }

    #[test]
    fn jpeg_images_load_too() {
        let dir = tempfile::tempdir().unwrap();
        let img = RgbImage::from_pixel(16, 16, image::Rgb([200, 40, 40]));
        img.save(dir.path().join("a.jpg")).unwrap();
        std::fs::write(
            dir.path().join("bench.json"),
            r#"[{"input": "a.jpg", "prompt": "x", "task": "kubric"}]"#,
        )
        .unwrap();
        let ds = AuroraDataset::load(dir.path()).unwrap();
        let back = ds.input_image(0).unwrap();
        assert_eq!(back.dimensions(), (16, 16));
        let p = back.get_pixel(8, 8).0;
        assert!(p[0] > 180 && p[1] < 70, "JPEG decoded to {p:?}");
    }

    #[test]
    fn missing_and_undecodable_images_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("data.json"), r#"[{"input": "nope.png", "instruction": "x"}, {"input": "bad.png", "instruction": "y"}]"#).unwrap();
        std::fs::write(dir.path().join("bad.png"), b"not a png").unwrap();
        let ds = AuroraDataset::load(dir.path()).unwrap();
        assert!(
            ds.input_image(0)
                .unwrap_err()
                .to_string()
                .contains("nope.png")
        );
        let e = ds.input_image(1).unwrap_err().to_string();
        assert!(e.contains("bad.png") && e.contains("cannot decode"), "{e}");
        assert!(AuroraDataset::load(&dir.path().join("missing")).is_err());
    }

    #[test]
    fn videos_keep_labels_apart() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = VideoConfig {
            actions: 1,
            hold: 1,
            motion: 2,
            jitter: 0.01,
        };
        let v = random_video(
            &mut rng(2),
            cfg,
            RenderConfig {
                size: 16,
                samples: 1,
            },
        );
        let n = v.frames.len();
        VideoDataset::write(dir.path(), [("v0".into(), v)]).unwrap();
        let ds = VideoDataset::load(dir.path()).unwrap();
        assert_eq!(ds.frames(0).unwrap().len(), n);
        let videos_json = std::fs::read_to_string(dir.path().join(VIDEOS_FILE)).unwrap();
        assert!(
            !videos_json.contains("action"),
            "labels must not leak into videos.json"
        );
        assert_eq!(ds.labels_for_evaluation().unwrap()[0].segments.len(), 1);
    }
}
