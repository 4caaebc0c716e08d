//! Helpers for the evcxr Jupyter notebooks in `notebooks/`: images, image grids, tables and
//! plotly charts as rich cell output (evcxr's `EVCXR_BEGIN_CONTENT` protocol), the notebooks'
//! parameters from environment variables, and where the shipped models and scratch space are.
//!
//! evcxr keeps one output per MIME type per cell (a second image in the same cell replaces the
//! first), so every `show_*` helper emits one complete figure: build a grid with [`Grid`]
//! and show it once. Plots go out as `application/vnd.plotly.v1+json` (JupyterLab, VS Code)
//! with an HTML fallback that draws with a page-global `Plotly` (the HTML export of
//! `notebooks/run.py` embeds plotly.js once per page).

use crate::error::{Error, Result};
use crate::eval::report::{Table, escape, png_data_uri};
pub use crate::shipped::shipped_models;
use image::RgbImage;
use std::path::PathBuf;
use std::str::FromStr;

pub use plotly;

/// Where the notebook trains and evaluates: the parameter `DYNABOOT_DEVICE` (`cpu`, the
/// default; `cuda` or `cuda:N` with a kernel built with the `cuda` feature, see the notebooks'
/// README).
pub fn device() -> Result<candle_core::Device> {
    let name: String = param("device", "cpu".to_string())?;
    crate::device::parse_device(&name, "DYNABOOT_DEVICE")
}

/// The notebook parameter `name`: the environment variable `DYNABOOT_<NAME>` when set, else
/// `default`. papermill has no Rust translator, so this is how CI runs smaller presets.
pub fn param<T: FromStr>(name: &str, default: T) -> Result<T>
where
    T::Err: std::fmt::Display,
{
    let var = format!("DYNABOOT_{}", name.to_uppercase());
    match std::env::var(&var) {
        Ok(v) => v.trim().parse().map_err(|e| {
            Error::Invalid(format!(
                "environment variable {var}={v:?} is not a valid value ({e}); unset it or fix it"
            ))
        }),
        Err(_) => Ok(default),
    }
}

/// An empty scratch folder `name` for a notebook's generated data: under `DYNABOOT_SCRATCH`
/// when set, else under the system's temporary folder. Emptied first.
pub fn scratch_dir(name: &str) -> Result<PathBuf> {
    let root = std::env::var("DYNABOOT_SCRATCH")
        .map(PathBuf::from)
        .unwrap_or_else(|_| std::env::temp_dir().join("dynaboot-notebooks"));
    let dir = root.join(name);
    if dir.exists() {
        std::fs::remove_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    }
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    Ok(dir)
}

/// Emits `content` as the cell's output of MIME type `mime`.
fn emit(mime: &str, content: &str) {
    println!("EVCXR_BEGIN_CONTENT {mime}\n{content}\nEVCXR_END_CONTENT");
}

/// Shows one image as the cell's output (`image/png`), enlarged `scale` times with crisp
/// pixels.
pub fn show_image(image: &RgbImage, scale: u32) -> Result<()> {
    emit("image/png", &png_base64(image, scale)?);
    Ok(())
}

/// `image` enlarged `scale` times (nearest neighbour) as base64 PNG, evcxr's `image/png`.
fn png_base64(image: &RgbImage, scale: u32) -> Result<String> {
    let (w, h) = image.dimensions();
    let s = scale.max(1);
    let big = image::imageops::resize(image, w * s, h * s, image::imageops::FilterType::Nearest);
    crate::png::png_base64(&big)
}

/// Shows HTML as the cell's output.
pub fn show_html(html: &str) {
    emit("text/html", html);
}

/// Shows a table (title, header and rows) as the cell's output.
pub fn show_table(table: &Table) {
    show_tables(std::slice::from_ref(table));
}

/// Shows several tables, one under the other, as the cell's one output (evcxr keeps one
/// output of a kind per cell).
pub fn show_tables(tables: &[Table]) {
    show_html(
        &tables
            .iter()
            .map(|t| format!("<b>{}</b>{}", escape(&t.title), t.html()))
            .collect::<String>(),
    );
}

/// Shows a plotly chart: the plotly MIME type for JupyterLab and VS Code, HTML for exports.
pub fn show_plot(plot: &plotly::Plot) {
    emit("application/vnd.plotly.v1+json", &plot.to_json());
    emit("text/html", &plot.to_inline_html(None));
}

/// Rows of captioned images, shown enlarged with crisp pixels, as one output.
#[derive(Default)]
pub struct Grid {
    rows: Vec<(String, Vec<String>)>,
    pixels: u32,
}

impl Grid {
    /// An empty grid whose images are drawn `pixels` wide.
    pub fn new(pixels: u32) -> Self {
        Grid {
            rows: Vec::new(),
            pixels,
        }
    }

    /// Starts a new row with a label (may be empty).
    pub fn row(&mut self, label: &str) -> &mut Self {
        self.rows.push((label.to_string(), Vec::new()));
        self
    }

    /// Adds an image with a caption to the current row; `highlight` outlines it.
    pub fn image(&mut self, image: &RgbImage, caption: &str, highlight: bool) -> Result<&mut Self> {
        if self.rows.is_empty() {
            self.row("");
        }
        let border = if highlight { "#2a7" } else { "transparent" };
        let fig = format!(
            "<figure style=\"margin:0;text-align:center;font-size:.8em;max-width:{w}px\">\
             <img src=\"{}\" width=\"{w}\" height=\"{w}\" style=\"image-rendering:pixelated;\
             border:3px solid {border}\"><figcaption>{}</figcaption></figure>",
            png_data_uri(image)?,
            escape(caption),
            w = self.pixels,
        );
        self.rows.last_mut().expect("a row exists").1.push(fig);
        Ok(self)
    }

    /// The grid as HTML.
    pub(crate) fn html(&self) -> String {
        let mut s = String::new();
        for (label, figs) in &self.rows {
            if !label.is_empty() {
                s += &format!(
                    "<p style=\"margin:.6em 0 .2em\"><b>{}</b></p>",
                    escape(label)
                );
            }
            s += "<div style=\"display:flex;flex-wrap:wrap;gap:.5em;align-items:flex-start\">";
            s += &figs.concat();
            s += "</div>";
        }
        s
    }

    /// Shows the grid as the cell's output.
    pub fn show(&self) {
        show_html(&self.html());
    }
}

/// Shows images side by side with their captions.
pub fn show_images<S: AsRef<str>>(images: &[(S, &RgbImage)]) -> Result<()> {
    let mut grid = Grid::new(128);
    for (caption, image) in images {
        grid.image(image, caption.as_ref(), false)?;
    }
    grid.show();
    Ok(())
}

/// A `side` x `side` grid of non-negative values as a heat map image (black - red - yellow -
/// white, scaled to the largest value), `pixels` wide.
pub fn heatmap(values: &[f32], side: usize, pixels: u32) -> Result<RgbImage> {
    if side == 0 || values.len() != side * side {
        return Err(Error::Invalid(format!(
            "heatmap: {} values do not fill a {side} x {side} grid",
            values.len()
        )));
    }
    let max = values.iter().copied().fold(0.0f32, f32::max).max(1e-12);
    let cell = (pixels as usize / side).max(1) as u32;
    let px = cell * side as u32;
    Ok(RgbImage::from_fn(px, px, |x, y| {
        let v = (values[(y / cell) as usize * side + (x / cell) as usize] / max).clamp(0.0, 1.0);
        let ch = |t: f32| (t.clamp(0.0, 1.0) * 255.0).round() as u8;
        image::Rgb([ch(3.0 * v), ch(3.0 * v - 1.0), ch(3.0 * v - 2.0)])
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn param_reads_the_environment_and_names_the_variable_on_error() {
        // SAFETY: this test is the only one touching these variables.
        unsafe {
            std::env::set_var("DYNABOOT_NB_TEST_STEPS", "12");
            std::env::set_var("DYNABOOT_NB_TEST_BAD", "twelve");
        }
        assert_eq!(param("nb_test_steps", 3usize).unwrap(), 12);
        assert_eq!(param("nb_test_unset", 3usize).unwrap(), 3);
        let err = param("nb_test_bad", 3usize).unwrap_err().to_string();
        assert!(err.contains("DYNABOOT_NB_TEST_BAD"), "{err}");
    }

    #[test]
    fn heatmap_scales_to_the_maximum_and_checks_its_shape() {
        let img = heatmap(&[0.0, 1.0, 2.0, 4.0], 2, 8).unwrap();
        assert_eq!(img.dimensions(), (8, 8));
        assert_eq!(img.get_pixel(0, 0).0, [0, 0, 0]);
        assert_eq!(img.get_pixel(7, 7).0, [255, 255, 255]);
        // A quarter of the maximum is dark red; half is bright red going orange.
        assert_eq!(img.get_pixel(7, 0).0, [191, 0, 0]);
        assert!(heatmap(&[1.0; 5], 2, 8).is_err());
    }

    #[test]
    fn images_go_out_as_enlarged_base64_png() {
        use base64::Engine;
        let mut img = RgbImage::new(3, 2);
        img.put_pixel(2, 1, image::Rgb([200, 10, 30]));
        let b64 = png_base64(&img, 4).unwrap();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap();
        let back = image::load_from_memory(&bytes).unwrap().to_rgb8();
        assert_eq!(back.dimensions(), (12, 8));
        assert_eq!(back.get_pixel(11, 7).0, [200, 10, 30]);
        assert_eq!(back.get_pixel(7, 3).0, [0, 0, 0]);
    }

    #[test]
    fn grid_rows_hold_their_figures_in_order() {
        let mut g = Grid::new(64);
        let img = RgbImage::new(4, 4);
        g.row("first");
        g.image(&img, "a <b>", false).unwrap();
        g.row("second");
        g.image(&img, "c", true).unwrap();
        let html = g.html();
        let (a, c) = (html.find("a &lt;b&gt;").unwrap(), html.find(">c<").unwrap());
        assert!(a < html.find("second").unwrap() && html.find("second").unwrap() < c);
        assert_eq!(html.matches("<img").count(), 2);
        assert_eq!(html.matches("#2a7").count(), 1);
    }
}
