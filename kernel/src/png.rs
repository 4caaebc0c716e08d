//! PNG encoding in memory: the one place the kernel turns an image into PNG bytes, for files,
//! HTML reports, notebook cells and the browser demo alike.

use crate::error::{Error, Result};
use base64::Engine;
use image::RgbImage;

/// `img` as PNG bytes.
pub fn png_bytes(img: &RgbImage) -> Result<Vec<u8>> {
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png)
        .map_err(|e| {
            let (w, h) = img.dimensions();
            Error::Invalid(format!("cannot encode a {w}x{h} image as PNG: {e}"))
        })?;
    Ok(out.into_inner())
}

/// `img` as base64 PNG, what `data:` URIs and Jupyter's `image/png` outputs carry.
pub(crate) fn png_base64(img: &RgbImage) -> Result<String> {
    Ok(base64::engine::general_purpose::STANDARD.encode(png_bytes(img)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn png_round_trips_pixels() {
        let mut img = RgbImage::new(5, 3);
        img.put_pixel(4, 2, image::Rgb([1, 200, 30]));
        let back = image::load_from_memory(&png_bytes(&img).unwrap())
            .unwrap()
            .to_rgb8();
        assert_eq!(back, img);
        let b64 = png_base64(&img).unwrap();
        let raw = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap();
        assert_eq!(&raw[1..4], b"PNG");
    }
}
