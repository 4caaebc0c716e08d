//! End to end: `dynaboot judge --vlm` against a local server that speaks the OpenAI
//! chat-completions protocol (started by the test, loopback only): the shipped world model's
//! predictions on the embedded test split are scored, compared with the exact judge, cached so
//! a rerun sends nothing, and the API key travels only through the environment.

use dynaboot_tests::{bin, fails, s};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// Answers every chat completion with `reply`; records each request's Authorization header.
fn fake_vlm(reply: &'static str) -> (String, Arc<AtomicUsize>, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    let (count, auth) = (
        Arc::new(AtomicUsize::new(0)),
        Arc::new(Mutex::new(Vec::new())),
    );
    let (c, a) = (count.clone(), auth.clone());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let mut stream = stream.unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let (mut length, mut key, mut line) = (0usize, String::new(), String::new());
            reader.read_line(&mut line).unwrap();
            assert!(line.starts_with("POST /v1/chat/completions"), "{line}");
            loop {
                line.clear();
                reader.read_line(&mut line).unwrap();
                if line.trim().is_empty() {
                    break;
                }
                let lower = line.to_ascii_lowercase();
                if let Some(v) = lower.strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap();
                }
                if lower.starts_with("authorization:") {
                    key = line["authorization:".len()..].trim().to_string();
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            let request: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(request["model"], "fake-vlm");
            c.fetch_add(1, Ordering::SeqCst);
            a.lock().unwrap().push(key);
            let answer =
                serde_json::json!({"choices": [{"message": {"content": reply}}]}).to_string();
            write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\n{answer}",
                answer.len()
            )
            .unwrap();
        }
    });
    (url, count, auth)
}

/// Runs `dynaboot judge` against `url`, writing `out`; its exit status and what it printed.
fn run_judge(url: &str, out: &std::path::Path) -> (bool, String) {
    let world = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/world");
    let o = std::process::Command::new(bin())
        .args([
            "judge",
            "--vlm",
            url,
            "--model",
            "fake-vlm",
            "--world",
            s(&world),
        ])
        .args(["--per-family", "1", "--out", s(out), "--force"])
        .env("DYNABOOT_VLM_API_KEY", "sk-test")
        .output()
        .unwrap();
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    (o.status.success(), printed)
}

fn judge(url: &str, out: &std::path::Path) -> String {
    let (ok, printed) = run_judge(url, out);
    assert!(ok, "{printed}");
    printed
}

#[test]
fn a_vlm_scores_predictions_and_a_rerun_comes_from_the_cache() {
    let (url, count, auth) = fake_vlm("5");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("vlm.json");
    let printed = judge(&url, &out);
    assert!(
        printed.contains("agreement with the exact judge"),
        "{printed}"
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    // One row of each of the 4 families, two questions each.
    assert_eq!(report["judged"], 4);
    assert_eq!(report["failed"], 0);
    assert_eq!(count.load(Ordering::SeqCst), 8);
    assert_eq!(report["scores"]["average"], 5.0);
    assert_eq!(report["scores"]["per_task"].as_object().unwrap().len(), 4);
    assert_eq!(report["exact_agreement"]["n"], 4);
    assert!(report["samples"][0]["exact"]["score"].is_number());
    assert!(auth.lock().unwrap().iter().all(|k| k == "Bearer sk-test"));

    // The same run again asks nothing.
    judge(&url, &out);
    assert_eq!(count.load(Ordering::SeqCst), 8);
    let again: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(again["traffic"]["cached"], 8);
    assert_eq!(again["scores"], report["scores"]);
}

#[test]
fn replies_that_are_not_scores_are_failures_not_guesses() {
    let (url, count, _) = fake_vlm("It looks like a good edit, maybe 8/10.");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("vlm.json");
    // Nothing scored is no score: a failure that says why, and no report.
    let (ok, printed) = run_judge(&url, &out);
    assert!(!ok, "{printed}");
    assert!(
        printed.contains("none of the 4") && printed.contains("not a score"),
        "{printed}"
    );
    assert!(!out.exists(), "a report without a score was written");
    // Each sample: both questions, three tries each.
    assert_eq!(count.load(Ordering::SeqCst), 24);

    let e = fails(&[
        "judge",
        "--vlm",
        "127.0.0.1:9",
        "--model",
        "m",
        "--world",
        "models/world",
        "--out",
        s(&out),
    ]);
    assert!(
        e.contains("--vlm 127.0.0.1:9") && e.contains("http://"),
        "{e}"
    );
}
