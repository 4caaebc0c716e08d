//! Reports: tables as Markdown and HTML, and example pages with the images inline (PNG data
//! URIs, so one `.html` file holds everything and opens anywhere).

use super::dynamics_model_eval::{CheckedReport, DynamicsReport};
use super::world_model_eval::{WorldExample, WorldReport};
use crate::error::Result;
use crate::train::conditioning::Conditioning;
use image::RgbImage;

/// A table: a header row and body rows of already formatted cells.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Table {
    pub(crate) title: String,
    pub(crate) header: Vec<String>,
    pub(crate) rows: Vec<Vec<String>>,
}

impl Table {
    /// An empty table with a title and column names.
    pub fn new(title: &str, header: &[&str]) -> Self {
        Table {
            title: title.into(),
            header: header.iter().map(|s| s.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row (as many cells as the header).
    pub fn push(&mut self, row: Vec<String>) {
        debug_assert_eq!(row.len(), self.header.len(), "a row of \"{}\"", self.title);
        self.rows.push(row);
    }

    /// The table as Markdown, its title as a heading.
    pub fn markdown(&self) -> String {
        let line = |cells: &[String]| format!("| {} |\n", cells.join(" | "));
        let mut s = format!("### {}\n\n", self.title);
        s += &line(&self.header);
        s += &format!("|{}\n", "---|".repeat(self.header.len()));
        for r in &self.rows {
            s += &line(r);
        }
        s + "\n"
    }

    /// The table as HTML, its title as a heading.
    pub fn html(&self) -> String {
        // Markdown bold (`**average**`) becomes bold in HTML too.
        let cell = |c: &str| match c.strip_prefix("**").and_then(|c| c.strip_suffix("**")) {
            Some(inner) => format!("<b>{}</b>", escape(inner)),
            None => escape(c),
        };
        let cells = |tag: &str, row: &[String]| {
            row.iter()
                .map(|c| format!("<{tag}>{}</{tag}>", cell(c)))
                .collect::<String>()
        };
        let body: String = self
            .rows
            .iter()
            .map(|r| format!("<tr>{}</tr>", cells("td", r)))
            .collect();
        format!(
            "<h3>{}</h3>\n<table><tr>{}</tr>{body}</table>\n",
            escape(&self.title),
            cells("th", &self.header)
        )
    }
}

/// The paper's Table 2 layout: judge score per family (rows) for best-of-n (columns), with the
/// copy-source and true-target-through-VQ baselines, the average last; then pixel metrics.
pub fn world_table(r: &WorldReport) -> Table {
    let mut header: Vec<String> = vec!["family".into()];
    header.extend(r.best_of.iter().map(|b| format!("N = {}", b.n)));
    header.extend(["copy source".into(), "target via VQ".into()]);
    let mut t = Table {
        title: format!(
            "World model: judge score (0-10, min of success and minimal editing), {} rows{}",
            r.rows,
            if r.verified {
                ", best-of-N by the dynamics model"
            } else {
                ""
            }
        ),
        header,
        rows: Vec::new(),
    };
    let f2 = |v: f64| format!("{v:.2}");
    for family in r.scores.per_family.keys() {
        let mut row = vec![family.clone()];
        row.extend(r.best_of.iter().map(|b| f2(b.scores.per_family[family])));
        row.push(f2(r.copy_source.per_family[family]));
        row.push(f2(r.target_through_vq.per_family[family]));
        t.push(row);
    }
    let line = |name: &str, f: &dyn Fn(&super::world_model_eval::Scores) -> f64, d: usize| {
        let mut row = vec![name.to_string()];
        row.extend(r.best_of.iter().map(|b| format!("{:.*}", d, f(&b.scores))));
        row.push(format!("{:.*}", d, f(&r.copy_source)));
        row.push(format!("{:.*}", d, f(&r.target_through_vq)));
        row
    };
    t.push(line("**average**", &|s| s.average, 2));
    t.push(line("success", &|s| s.success, 2));
    t.push(line("minimal editing", &|s| s.minimal, 2));
    t.push(line("L1 to target", &|s| s.l1, 4));
    t.push(line("PSNR to target (dB)", &|s| s.psnr, 1));
    t
}

/// The dynamics model's metrics and preference test.
pub fn dynamics_table(d: &DynamicsReport) -> Table {
    let mut t = Table::new(
        &format!("Dynamics model ({} rows, greedy)", d.rows),
        &["metric", "value"],
    );
    let pct = |v: f64| format!("{:.1} %", 100.0 * v);
    for (family, v) in &d.exact_per_family {
        t.push(vec![format!("exact action, {family}"), pct(*v)]);
    }
    t.push(vec!["exact action, average".into(), pct(d.exact)]);
    t.push(vec![
        "judge of the executed action (0-10)".into(),
        format!("{:.2}", d.judge),
    ]);
    t.push(vec!["parsable".into(), pct(d.parsed)]);
    t.push(vec!["BLEU-4 (corpus)".into(), format!("{:.3}", d.bleu)]);
    t.push(vec!["ROUGE-L".into(), format!("{:.3}", d.rouge_l)]);
    if let Some(p) = &d.preference {
        for (name, v) in [
            ("prefers truth over a random action", p.random_action),
            ("... over a random observation", p.random_observation),
            ("... over a copied observation", p.copied_observation),
            ("... over swapped observations", p.swapped_observations),
        ] {
            t.push(vec![name.into(), pct(v)]);
        }
    }
    t
}

/// The dynamics model's greedy explanations beside those a world model checked: exact action
/// per family, the executed action's judge, and how often some proposal was right.
pub fn checked_table(d: &DynamicsReport, c: &CheckedReport) -> Table {
    let mut t = Table::new(
        &format!(
            "Explanations checked by the world model ({} rows; best of {} proposals, world weight {})",
            c.rows, c.config.proposals, c.config.world_weight
        ),
        &["exact action", "greedy", "checked", "any proposal"],
    );
    let pct = |v: Option<&f64>| v.map_or("-".into(), |v| format!("{:.1} %", 100.0 * v));
    for (family, v) in &c.exact_per_family {
        t.push(vec![
            family.clone(),
            pct(d.exact_per_family.get(family)),
            pct(Some(v)),
            pct(c.any_exact_per_family.get(family)),
        ]);
    }
    t.push(vec![
        "average".into(),
        pct(Some(&d.exact)),
        pct(Some(&c.exact)),
        pct(Some(&c.any_exact)),
    ]);
    t.push(vec![
        "judge of the executed action (0-10)".into(),
        format!("{:.2}", d.judge),
        format!("{:.2}", c.judge),
        format!("{:.1} distinct proposals a row", c.distinct),
    ]);
    t
}

/// HTML-escapes text.
pub(crate) fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// An image as a `data:image/png;base64,...` URI.
pub(crate) fn png_data_uri(img: &RgbImage) -> Result<String> {
    Ok(format!(
        "data:image/png;base64,{}",
        crate::png::png_base64(img)?
    ))
}

fn figure(img: &RgbImage, caption: &str, class: &str) -> Result<String> {
    Ok(format!(
        "<figure class=\"{class}\"><img src=\"{}\" width=\"128\" height=\"128\"><figcaption>{}</figcaption></figure>",
        png_data_uri(img)?,
        escape(caption)
    ))
}

/// Example rows: source, action, every candidate with its verification score and judge score
/// (the one best-of-N returns outlined), and the true target.
pub fn examples_html(examples: &[WorldExample]) -> Result<String> {
    let mut s = String::from("<h3>Examples</h3>\n");
    for ex in examples {
        s += &format!(
            "<div class=\"example\"><p><b>{}</b>: “{}”</p><div class=\"row\">",
            escape(&ex.family),
            escape(&ex.instruction)
        );
        s += &figure(&ex.source, "source", "")?;
        for (i, (img, score, j)) in ex.candidates.iter().enumerate() {
            let verify = score
                .map(|sc| format!("log p {:.1} · ", sc.sum))
                .unwrap_or_default();
            let class = if i == ex.chosen { "chosen" } else { "" };
            s += &figure(img, &format!("#{i} {verify}judge {:.1}", j.score), class)?;
        }
        s += &figure(&ex.target, "true target", "")?;
        s += "</div></div>\n";
    }
    Ok(s)
}

/// A whole page around `body`.
pub fn html_page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>{t}</title><style>\
body{{font-family:system-ui,sans-serif;margin:2em;max-width:80em}}\
table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #ccc;padding:.3em .6em;text-align:right}}\
td:first-child,th:first-child{{text-align:left}}\
.row{{display:flex;flex-wrap:wrap;gap:.5em}}figure{{margin:0;text-align:center;font-size:.8em}}\
figure img{{image-rendering:pixelated;border:3px solid transparent}}figure.chosen img{{border-color:#2a7}}\
</style></head><body><h1>{t}</h1>\n{body}</body></html>\n",
        t = escape(title)
    )
}

/// The conditioning test as a table: NLL per token with the true and a shuffled input.
pub fn conditioning_table(c: &Conditioning) -> Table {
    let mut t = Table::new(
        "Conditioning test (teacher-forced NLL per token, nats): true inputs vs another row's",
        &["tokens", "true", "shuffled", "ratio"],
    );
    let mut row = |name: &str, a: f64, b: f64| {
        t.push(vec![
            name.to_string(),
            format!("{a:.3}"),
            format!("{b:.3}"),
            format!("{:.1}x", b / a.max(1e-9)),
        ])
    };
    if let Some(w) = &c.world {
        let share = 100.0 * w.unchanged_share;
        row(
            &format!("world: target = source ({share:.0} %)"),
            w.unchanged_true,
            w.unchanged_shuffled,
        );
        row("world: changed", w.changed_true, w.changed_shuffled);
    }
    if let Some(d) = &c.dynamics {
        row("dynamics: action", d.action_true, d.action_shuffled);
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    #[test]
    fn tables_render_every_cell_escaped() {
        let mut t = Table::new("Judge <score>", &["family", "N = 1"]);
        t.push(vec!["kubric".into(), "7.30".into()]);
        let md = t.markdown();
        assert!(
            md.contains("| family | N = 1 |\n|---|---|\n| kubric | 7.30 |"),
            "{md}"
        );
        let html = t.html();
        assert!(html.contains("<td>kubric</td><td>7.30</td>"));
        assert!(html.contains("Judge &lt;score&gt;"));
        t.push(vec!["**average**".into(), "<b>".into()]);
        let html = t.html();
        assert!(
            html.contains("<td><b>average</b></td><td>&lt;b&gt;</td>"),
            "{html}"
        );
        assert!(t.markdown().contains("| **average** |"));
    }

    #[test]
    fn images_become_png_data_uris() {
        let img = RgbImage::from_pixel(4, 4, image::Rgb([10, 20, 30]));
        let uri = png_data_uri(&img).unwrap();
        let b64 = uri.strip_prefix("data:image/png;base64,").unwrap();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap();
        let back = image::load_from_memory(&bytes).unwrap().to_rgb8();
        assert_eq!(back, img);
    }
}
