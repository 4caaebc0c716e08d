//! The AURORA / AURORA-Bench json layout: a list of rows
//! `{"input": "<path>", "output": "<path>", "instruction": "<text>", "task": "<subset>"}`,
//! paths relative to the json file. Accepted quirks: `prompt` as an alias of `instruction`,
//! rows without `output` (evaluation-only), extra keys ignored. dynaboot adds an optional
//! sidecar (`action`, `source_state`, `target_state`) that real AURORA files simply lack.
//!
//! Pure parsing and printing (no file system), so the browser build can use it too.

use crate::error::{Error, Result};
use crate::world::{Action, Scene};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Ground truth the embedded world knows about a row (absent in real AURORA data).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sidecar {
    /// The action, structured.
    pub action: Action,
    /// The scene the source image shows.
    pub source_state: Scene,
    /// The scene the target image shows (the action applied).
    pub target_state: Scene,
}

/// One example: source image, instruction, optional target image.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// The source image's path, relative to the data folder.
    pub input: String,
    /// The target image's path (absent in unlabelled or evaluation-only rows).
    pub output: Option<String>,
    /// The action in words.
    pub instruction: String,
    /// The family (AURORA's `task` field: kubric, something, whatsup, magicbrush, ...).
    pub family: String,
    /// The row's id in its source dataset, where it has one.
    pub id: Option<String>,
    /// Scene states of the embedded world's rows.
    pub sidecar: Option<Sidecar>,
}

fn malformed(
    file: &str,
    row: Option<usize>,
    field: Option<&str>,
    message: impl Into<String>,
) -> Error {
    Error::Malformed {
        file: file.to_string(),
        row,
        field: field.map(str::to_string),
        message: message.into(),
    }
}

fn string_field(
    obj: &Map<String, Value>,
    names: &[&str],
    file: &str,
    row: usize,
) -> Result<Option<String>> {
    for name in names {
        match obj.get(*name) {
            None | Some(Value::Null) => continue,
            Some(Value::String(s)) => return Ok(Some(s.clone())),
            Some(other) => {
                return Err(malformed(
                    file,
                    Some(row),
                    Some(name),
                    format!("expected a string, found {other}"),
                ));
            }
        }
    }
    Ok(None)
}

/// Parses the text of an AURORA json file; `file` names it in error messages.
/// Whether a row's image path stays inside the dataset's folder: relative, with no `..`.
fn stays_inside(path: &str) -> bool {
    use std::path::Component;
    std::path::Path::new(path)
        .components()
        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
}

/// The rows of an AURORA json file's text (`file` names it in errors), each checked.
pub fn parse_rows(text: &str, file: &str) -> Result<Vec<Row>> {
    let value: Value = serde_json::from_str(text).map_err(|e| {
        malformed(
            file,
            None,
            None,
            format!(
                "not valid JSON ({e}); fix it there: an AURORA json is a list of rows \
                     `[{{\"input\": ..., \"instruction\": ..., ...}}]`"
            ),
        )
    })?;
    let Value::Array(items) = value else {
        return Err(malformed(
            file,
            None,
            None,
            "expected a JSON list of rows `[{\"input\": ..., \"instruction\": ..., ...}]`",
        ));
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let Value::Object(obj) = item else {
                return Err(malformed(
                    file,
                    Some(i),
                    None,
                    "expected an object with `input`, `instruction` and `task`",
                ));
            };
            let need = |names: &[&str], hint: &str| -> Result<String> {
                let v = string_field(obj, names, file, i)?.ok_or_else(|| {
                    malformed(file, Some(i), Some(names[0]), format!("missing; {hint}"))
                })?;
                if v.trim().is_empty() {
                    return Err(malformed(file, Some(i), Some(names[0]), "is empty"));
                }
                Ok(v)
            };
            let inside = |name: &str, path: String| -> Result<String> {
                if stays_inside(&path) {
                    return Ok(path);
                }
                Err(malformed(
                    file,
                    Some(i),
                    Some(name),
                    format!(
                        "{path:?} leaves the dataset's folder; image paths are relative to the \
                         json file and stay inside its folder (copy the images there)"
                    ),
                ))
            };
            let input = inside(
                "input",
                need(
                    &["input"],
                    "add the source image's path, relative to the json file",
                )?,
            )?;
            let instruction = need(
                &["instruction", "prompt"],
                "add the action text as `instruction` (or `prompt`)",
            )?;
            let task =
                string_field(obj, &["task"], file, i)?.unwrap_or_else(|| "unknown".to_string());
            let output = string_field(obj, &["output"], file, i)?
                .map(|o| inside("output", o))
                .transpose()?;
            let id = match obj.get("id") {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) => Some(s.clone()),
                Some(Value::Number(n)) => Some(n.to_string()),
                Some(other) => {
                    return Err(malformed(
                        file,
                        Some(i),
                        Some("id"),
                        format!("expected a string or number, found {other}"),
                    ));
                }
            };
            let sidecar = if obj.contains_key("action")
                || obj.contains_key("source_state")
                || obj.contains_key("target_state")
            {
                let field = |name: &str| -> Result<Value> {
                    obj.get(name).cloned().ok_or_else(|| {
                        malformed(
                            file,
                            Some(i),
                            Some(name),
                            "missing while other sidecar fields are present",
                        )
                    })
                };
                fn parse<T: serde::de::DeserializeOwned>(
                    v: Value,
                    file: &str,
                    row: usize,
                    name: &str,
                ) -> Result<T> {
                    serde_json::from_value(v)
                        .map_err(|e| malformed(file, Some(row), Some(name), e.to_string()))
                }
                Some(Sidecar {
                    action: parse(field("action")?, file, i, "action")?,
                    source_state: parse(field("source_state")?, file, i, "source_state")?,
                    target_state: parse(field("target_state")?, file, i, "target_state")?,
                })
            } else {
                None
            };
            Ok(Row {
                input,
                output,
                instruction,
                family: task,
                id,
                sidecar,
            })
        })
        .collect()
}

/// Prints rows as an AURORA json file (pretty, one key per line).
pub fn rows_to_json(rows: &[Row]) -> String {
    let list: Vec<Value> = rows
        .iter()
        .map(|r| {
            let mut m = Map::new();
            if let Some(id) = &r.id {
                m.insert("id".into(), Value::String(id.clone()));
            }
            m.insert("input".into(), Value::String(r.input.clone()));
            if let Some(o) = &r.output {
                m.insert("output".into(), Value::String(o.clone()));
            }
            m.insert("instruction".into(), Value::String(r.instruction.clone()));
            m.insert("task".into(), Value::String(r.family.clone()));
            if let Some(s) = &r.sidecar {
                m.insert(
                    "action".into(),
                    serde_json::to_value(s.action).expect("actions serialise"),
                );
                m.insert(
                    "source_state".into(),
                    serde_json::to_value(&s.source_state).expect("scenes serialise"),
                );
                m.insert(
                    "target_state".into(),
                    serde_json::to_value(&s.target_state).expect("scenes serialise"),
                );
            }
            Value::Object(m)
        })
        .collect();
    serde_json::to_string_pretty(&list).expect("json values serialise")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::world::generate::triplets;

    fn err(text: &str) -> String {
        parse_rows(text, "bench.json").unwrap_err().to_string()
    }

    #[test]
    fn round_trip_with_sidecar() {
        let rows: Vec<Row> = triplets(1, 8)
            .into_iter()
            .enumerate()
            .map(|(i, t)| Row {
                input: format!("images/{i}_in.png"),
                output: Some(format!("images/{i}_out.png")),
                instruction: t.text.clone(),
                family: t.family().name().into(),
                id: Some(i.to_string()),
                sidecar: Some(Sidecar {
                    action: t.action,
                    source_state: t.source,
                    target_state: t.target,
                }),
            })
            .collect();
        assert_eq!(parse_rows(&rows_to_json(&rows), "x.json").unwrap(), rows);
    }

    #[test]
    fn accepts_aurora_quirks() {
        let text = r#"[{"input": "a.png", "output": "b.jpg", "prompt": "move it", "task": "kubric", "caption": "x", "type": 3},
                       {"input": "c.png", "instruction": "push it", "task": "something", "id": 17}]"#;
        let rows = parse_rows(text, "f.json").unwrap();
        assert_eq!(rows[0].instruction, "move it");
        assert_eq!(rows[0].output.as_deref(), Some("b.jpg"));
        assert_eq!(rows[1].output, None);
        assert_eq!(rows[1].id.as_deref(), Some("17"));
        assert!(rows.iter().all(|r| r.sidecar.is_none()));
    }

    #[test]
    fn malformed_input_names_file_row_and_field() {
        assert!(err("{").contains("bench.json: not valid JSON"));
        assert!(err(r#"{"input": "a"}"#).contains("expected a JSON list"));
        assert!(err(r#"[3]"#).contains("row 0"));
        let e =
            err(r#"[{"input": "a.png", "instruction": "x", "task": "t"}, {"instruction": "x"}]"#);
        assert!(
            e.contains("row 1") && e.contains("field `input`") && e.contains("missing"),
            "{e}"
        );
        let e = err(r#"[{"input": "a.png", "task": "t"}]"#);
        assert!(e.contains("field `instruction`"), "{e}");
        let e = err(r#"[{"input": 5, "instruction": "x"}]"#);
        assert!(
            e.contains("field `input`") && e.contains("expected a string"),
            "{e}"
        );
        let e = err(r#"[{"input": "a", "instruction": "  "}]"#);
        assert!(e.contains("is empty"), "{e}");
        for (field, path) in [("input", "../../etc/passwd"), ("input", "/etc/passwd")] {
            let e = err(&format!(r#"[{{"{field}": "{path}", "instruction": "x"}}]"#));
            assert!(
                e.contains("field `input`") && e.contains("leaves the dataset"),
                "{e}"
            );
        }
        let e =
            err(r#"[{"input": "./a.png", "output": "images/../../b.png", "instruction": "x"}]"#);
        assert!(
            e.contains("field `output`") && e.contains("leaves the dataset"),
            "{e}"
        );
        let e = err(
            r#"[{"input": "a", "instruction": "x", "action": {"kind": "fly"}, "source_state": {"objects": []}, "target_state": {"objects": []}}]"#,
        );
        assert!(e.contains("field `action`"), "{e}");
        let e = err(
            r#"[{"input": "a", "instruction": "x", "action": {"kind": "remove", "object": "red"}}]"#,
        );
        assert!(e.contains("field `source_state`"), "{e}");
        let e = err(r#"[{"input": "a", "instruction": "x", "id": [1]}]"#);
        assert!(e.contains("field `id`"), "{e}");
    }
}
