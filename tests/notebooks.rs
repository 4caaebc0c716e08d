//! The notebooks as files: valid nbformat 4 for kernel `rust`, no stored outputs, a markdown
//! introduction, closing assertions, and one shared dependency line so evcxr builds the kernel
//! crate once for all of them. (`notebooks/run.sh` executes them; this runs with `cargo test`.)

use serde_json::Value;
use std::path::{Path, PathBuf};

fn notebooks() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../notebooks");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("notebooks/ exists")
        .map(|e| e.expect("readable entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "ipynb"))
        .collect();
    v.sort();
    v
}

fn source(cell: &Value) -> String {
    match &cell["source"] {
        Value::String(s) => s.clone(),
        Value::Array(lines) => lines.iter().filter_map(Value::as_str).collect(),
        _ => String::new(),
    }
}

#[test]
fn the_nine_notebooks_of_the_research_workflow_are_there() {
    let names: Vec<String> = notebooks()
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for prefix in [
        "01-", "02-", "03-", "04-", "05-", "06-", "07-", "08-", "09-",
    ] {
        assert!(
            names.iter().any(|n| n.starts_with(prefix)),
            "no notebook {prefix}*: {names:?}"
        );
    }
}

#[test]
fn every_notebook_is_clean_nbformat_4_for_the_rust_kernel() {
    let mut deps = Vec::new();
    for path in notebooks() {
        let name = path.display();
        let nb: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap())
            .unwrap_or_else(|e| panic!("{name}: not json: {e}"));
        assert_eq!(nb["nbformat"], 4, "{name}");
        assert_eq!(nb["metadata"]["kernelspec"]["name"], "rust", "{name}");
        let cells = nb["cells"].as_array().expect("cells");
        assert_eq!(
            cells[0]["cell_type"], "markdown",
            "{name}: start with what it shows"
        );
        let code: Vec<&Value> = cells.iter().filter(|c| c["cell_type"] == "code").collect();
        for c in &code {
            assert!(
                c["outputs"].as_array().is_some_and(|o| o.is_empty()),
                "{name}: stored outputs; strip them"
            );
            assert!(
                c["execution_count"].is_null(),
                "{name}: stored execution count"
            );
        }
        // evcxr keeps one output per MIME type per cell: a second figure would replace the
        // first, so each cell shows at most one.
        for c in &code {
            let src = source(c);
            let shows = [
                "show_html(",
                "show_table(",
                "show_tables(",
                "show_plot(",
                "show_images(",
                "show_image(",
                ".show()",
            ]
            .iter()
            .map(|p| src.matches(p).count())
            .sum::<usize>();
            assert!(
                shows <= 1,
                "{name}: a cell shows {shows} figures; split it:\n{src}"
            );
        }
        let last = source(code.last().expect("code cells"));
        assert!(
            last.contains("assert"),
            "{name}: the last code cell must assert the claims"
        );
        deps.push(source(code[0]));
    }
    assert!(
        deps.iter()
            .all(|d| d == &deps[0] && d.starts_with(":dep dynaboot")),
        "every notebook starts with the same `:dep dynaboot` cell: {deps:?}"
    );
}
