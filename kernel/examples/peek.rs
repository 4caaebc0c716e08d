use dynaboot::world::*;
fn main() {
    let mut r = generate::rng(11);
    let cfg = RenderConfig::default();
    let mut sheet = image::RgbImage::new(64 * 8, 64 * 4);
    for i in 0..32 {
        let s = generate::random_scene(&mut r, 2..=5);
        let img = render::render_scene(&s, cfg);
        image::imageops::replace(&mut sheet, &img, (i % 8) * 64, (i / 8) * 64);
    }
    image::imageops::resize(&sheet, 1024, 512, image::imageops::FilterType::Nearest)
        .save("/tmp/sheet.png")
        .unwrap();
}
