use dynaboot::world::*;
fn main() {
    let cfg = RenderConfig::default();
    let rec = Recogniser::new(cfg);
    let mut r = generate::rng(11);
    let (mut ok, mut total) = (0, 0);
    let t0 = std::time::Instant::now();
    for k in 0..200 {
        let scene = generate::random_scene(&mut r, 2..=5);
        let img = render::render_scene(&scene, cfg);
        let sigma: f32 = std::env::var("BLUR")
            .ok()
            .map(|v| v.parse().unwrap())
            .unwrap_or(0.0);
        let img = if sigma > 0.0 {
            image::imageops::blur(&img, sigma)
        } else {
            img
        };
        let seen = rec.recognise_objects(&img);
        let seen_s = Scene {
            objects: seen.iter().map(|r| r.object).collect(),
        };
        let (c, t) = recognise::object_agreement(&scene, &seen_s);
        ok += c;
        total += t;
        if c != t && k < 200 {
            for o in scene.visible() {
                let got = seen.iter().find(|r| r.object.color == o.color);
                if got.map(|g| g.object) != Some(*o) {
                    println!(
                        "{k}: truth {:?} {:?} {:?} {:?} ud={} lid={}\n    got {:?}",
                        o.color,
                        o.shape,
                        o.size,
                        o.place,
                        o.upside_down,
                        o.lid_open,
                        got.map(|g| (
                            g.object.shape,
                            g.object.size,
                            g.object.place,
                            g.object.upside_down,
                            g.object.lid_open,
                            g.score
                        ))
                    );
                }
            }
        }
    }
    println!(
        "acc {:.4} ({ok}/{total}) in {:?}",
        ok as f32 / total as f32,
        t0.elapsed()
    );
}
