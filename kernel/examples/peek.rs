use dynaboot::world::*;
fn main() {
    let mut r = generate::rng(11);
    let cfg = RenderConfig::default();
    let mut sheet = image::RgbImage::new(64 * 8, 64 * 4);
    let t0 = std::time::Instant::now();
    for i in 0..32 {
        let s = generate::random_scene(&mut r, 2..=5);
        let img = render::render_scene(&s, cfg);
        image::imageops::replace(&mut sheet, &img, (i % 8) * 64, (i / 8) * 64);
    }
    eprintln!("{:?} per image", t0.elapsed() / 32);
    sheet.save("/tmp/sheet.png").unwrap();
    let big = render::render_scene(
        &generate::random_scene(&mut r, 5..=5),
        RenderConfig {
            size: 256,
            samples: 2,
        },
    );
    big.save("/tmp/big.png").unwrap();
}
