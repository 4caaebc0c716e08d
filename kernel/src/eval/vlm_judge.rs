//! The paper's VLM judge for images the embedded world's recogniser cannot read (real
//! AURORA-Bench rows): any OpenAI-compatible chat-completions endpoint with image input (vLLM,
//! the llama.cpp server, a hosted API) is asked the paper's two questions about the source, the
//! action and the prediction (editing success and minimal editing, 0-10); a sample's score is
//! the minimum of the two, as with the exact [`Judge`].
//!
//! Replies are parsed strictly: a reply that is not a whole number from 0 to 10 is asked again,
//! then recorded as failed, never guessed. Requests run `concurrency` at a time, at most
//! `requests_per_minute`; 429 and 5xx answers are retried with backoff. Every parsed reply is
//! appended to a cache file keyed by a hash of the model, the question and the images, so a
//! rerun asks nothing twice.

use crate::error::{Error, Result};
use crate::eval::EvalItem;
use crate::eval::judge::{Judge, Judgement};
use crate::eval::world_model_eval::{Scores, l1};
use crate::png::png_base64;
use crate::stats::agreement::spearman;
use crate::tokenize::vq::psnr;
use image::RgbImage;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Where and how to ask.
#[derive(Clone, Debug)]
pub struct VlmConfig {
    /// The API's base (`http://127.0.0.1:8000/v1`) or its chat-completions endpoint.
    pub url: String,
    /// The model name sent in each request.
    pub model: String,
    /// Sent as a bearer token; read from the environment by the caller, never from a file.
    pub api_key: Option<String>,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// `None`: no limit.
    pub requests_per_minute: Option<f64>,
    /// Extra tries after a reply that is not a score, or after a 429 / 5xx / network error.
    pub retries: usize,
    /// Time allowed for one request.
    pub timeout: Duration,
    /// JSON-lines cache of parsed replies (`None`: no cache).
    pub cache: Option<PathBuf>,
}

/// The two questions (the paper's judge), each answered with one number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Question {
    Success,
    Minimal,
}

impl Question {
    pub(crate) fn prompt(self, action: &str) -> String {
        let ask = match self {
            Question::Success => {
                "How completely does the second image show the change the action asks for? \
                 10: the change is made exactly as asked; 0: the change is not made at all."
            }
            Question::Minimal => {
                "How well does the second image keep everything the action does not ask to \
                 change? 10: everything else is exactly as in the first image; 0: the scene was \
                 redrawn."
            }
        };
        format!(
            "The first image shows a scene. The second image is a prediction of the same scene \
             after this action: \"{action}\".\n{ask}\nAnswer with a single whole number from 0 \
             to 10 and nothing else."
        )
    }
}

/// A reply that is a score: a whole number 0-10, alone (whitespace and a final period allowed).
pub(crate) fn parse_score(reply: &str) -> Option<u8> {
    let t = reply.trim();
    let t = t.strip_suffix('.').unwrap_or(t).trim();
    if t.is_empty() || t.len() > 2 || !t.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    t.parse::<u8>().ok().filter(|&v| v <= 10)
}

/// One sample's outcome.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum Verdict {
    /// The judge's scores for the sample.
    Scored(Judgement),
    /// No score after every try: why (the last reply or error).
    Failed {
        /// The last reply or error.
        reason: String,
    },
}

/// How many requests were sent and answered from the cache.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Traffic {
    /// Requests sent to the API (retries included).
    pub requests: usize,
    /// Answers taken from the cache instead.
    pub cached: usize,
    pub(crate) retries: usize,
}

#[derive(Serialize, Deserialize)]
struct CacheLine {
    key: String,
    score: u8,
}

/// The client.
pub struct VlmJudge {
    config: VlmConfig,
    endpoint: String,
    /// The endpoint as messages show it: any user and password in the URL left out.
    shown: String,
    agent: ureq::Agent,
    cache: Mutex<HashMap<String, u8>>,
    next_slot: Mutex<Instant>,
    requests: AtomicUsize,
    cached: AtomicUsize,
    retried: AtomicUsize,
}

/// What one try gave.
enum Try {
    Score(u8),
    /// Worth asking again (not a score, rate limited, server error, network).
    Again(String),
    /// Asking again will not help (bad key, bad request, unknown model).
    Stop(String),
}

impl VlmJudge {
    /// A judge for `config`; reads the cache file if there is one (lines a crash cut short
    /// are skipped).
    pub fn new(config: VlmConfig) -> Result<Self> {
        if config.concurrency == 0 {
            return Err(Error::Invalid(
                "VLM judge: concurrency must be 1 or more".into(),
            ));
        }
        let url = config.url.trim_end_matches('/');
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(Error::Invalid(format!(
                "--vlm {url}: give an http:// or https:// URL, e.g. http://127.0.0.1:8000/v1"
            )));
        }
        let endpoint = if url.ends_with("/chat/completions") {
            url.to_string()
        } else {
            format!("{url}/chat/completions")
        };
        let mut cache = HashMap::new();
        if let Some(path) = &config.cache
            && path.exists()
        {
            let text = crate::files::read_input_text(path, crate::files::Input::Json)?;
            for line in text.lines() {
                // A line a crash cut short, or a score out of range, is asked again.
                if let Ok(l) = serde_json::from_str::<CacheLine>(line)
                    && l.score <= 10
                {
                    cache.insert(l.key, l.score);
                }
            }
        }
        // No redirect is followed: one would resend the request (and its key) to wherever
        // the endpoint points, or turn the POST into a GET whose reply is read as a score.
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(config.timeout))
            .http_status_as_error(false)
            .max_redirects(0)
            .build()
            .into();
        Ok(VlmJudge {
            shown: without_credentials(&endpoint),
            endpoint,
            agent,
            cache: Mutex::new(cache),
            next_slot: Mutex::new(Instant::now()),
            requests: AtomicUsize::new(0),
            cached: AtomicUsize::new(0),
            retried: AtomicUsize::new(0),
            config,
        })
    }

    /// The requests sent so far.
    pub fn traffic(&self) -> Traffic {
        Traffic {
            requests: self.requests.load(Ordering::Relaxed),
            cached: self.cached.load(Ordering::Relaxed),
            retries: self.retried.load(Ordering::Relaxed),
        }
    }

    fn key(&self, question: Question, action: &str, images: &[&str; 2]) -> String {
        let mut h = Sha256::new();
        for part in [
            self.endpoint.as_str(),
            self.config.model.as_str(),
            &question.prompt(action),
            images[0],
            images[1],
        ] {
            h.update((part.len() as u64).to_le_bytes());
            h.update(part.as_bytes());
        }
        h.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }

    fn remember(&self, key: String, score: u8) -> Result<()> {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(path) = &self.config.cache {
            let line = serde_json::to_string(&CacheLine {
                key: key.clone(),
                score,
            })
            .expect("cache lines serialise");
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| Error::io(path, e))?;
            writeln!(f, "{line}").map_err(|e| Error::io(path, e))?;
        }
        cache.insert(key, score);
        Ok(())
    }

    /// Waits for this request's turn under the rate limit.
    fn wait_turn(&self) {
        let Some(rpm) = self.config.requests_per_minute else {
            return;
        };
        let gap = Duration::from_secs_f64(60.0 / rpm);
        let start = {
            let mut next = self.next_slot.lock().unwrap_or_else(|p| p.into_inner());
            let start = (*next).max(Instant::now());
            *next = start + gap;
            start
        };
        std::thread::sleep(start.saturating_duration_since(Instant::now()));
    }

    fn try_once(&self, question: Question, action: &str, images: &[&str; 2]) -> Try {
        self.wait_turn();
        self.requests.fetch_add(1, Ordering::Relaxed);
        let image = |b64: &str| serde_json::json!({"type": "image_url", "image_url": {"url": format!("data:image/png;base64,{b64}")}});
        let body = serde_json::json!({
            "model": self.config.model,
            "temperature": 0,
            "max_tokens": 8,
            "messages": [{"role": "user", "content": [
                {"type": "text", "text": question.prompt(action)},
                image(images[0]),
                image(images[1]),
            ]}],
        });
        let mut request = self.agent.post(&self.endpoint);
        if let Some(key) = &self.config.api_key {
            request = request.header("Authorization", &format!("Bearer {key}"));
        }
        let mut response = match request.send_json(&body) {
            Ok(r) => r,
            Err(e) => return Try::Again(format!("{}: {e}", self.shown)),
        };
        let status = response.status().as_u16();
        let text = response
            .body_mut()
            .read_to_string()
            .unwrap_or_else(|e| format!("(unreadable body: {e})"));
        match status {
            200..=299 => {}
            300..=399 => {
                let to = response
                    .headers()
                    .get("location")
                    .and_then(|l| l.to_str().ok())
                    .map(without_credentials)
                    .unwrap_or_else(|| "(no Location)".into());
                return Try::Stop(format!(
                    "HTTP {status}: {} redirects to {to}; the judge follows no redirect \
                     (it would resend the request elsewhere): give the final URL with --vlm",
                    self.shown
                ));
            }
            429 | 500..=599 => return Try::Again(format!("HTTP {status}: {}", short(&text))),
            401 | 403 => {
                return Try::Stop(format!(
                    "HTTP {status}: the endpoint refused the key (set it in the environment \
                     variable the judge command names): {}",
                    short(&text)
                ));
            }
            _ => return Try::Stop(format!("HTTP {status}: {}", short(&text))),
        }
        let reply = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| {
                v["choices"][0]["message"]["content"]
                    .as_str()
                    .map(String::from)
            });
        match reply {
            None => Try::Again(format!(
                "the answer is not a chat completion: {}",
                short(&text)
            )),
            Some(r) => match parse_score(&r) {
                Some(s) => Try::Score(s),
                None => Try::Again(format!("reply {:?} is not a score from 0 to 10", short(&r))),
            },
        }
    }

    /// One question about one sample: the cached or asked score, or why there is none.
    pub(crate) fn ask(
        &self,
        question: Question,
        action: &str,
        images: &[&str; 2],
    ) -> Result<std::result::Result<u8, String>> {
        let key = self.key(question, action, images);
        if let Some(&s) = self
            .cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
        {
            self.cached.fetch_add(1, Ordering::Relaxed);
            return Ok(Ok(s));
        }
        let mut last = String::new();
        for attempt in 0..=self.config.retries {
            if attempt > 0 {
                self.retried.fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(200 << attempt.min(5)));
            }
            match self.try_once(question, action, images) {
                Try::Score(s) => {
                    self.remember(key, s)?;
                    return Ok(Ok(s));
                }
                Try::Again(why) => last = why,
                Try::Stop(why) => return Ok(Err(why)),
            }
        }
        Ok(Err(format!(
            "no score after {} tries: {last}",
            self.config.retries + 1
        )))
    }

    /// Both questions about each `(source, action, prediction)`, `concurrency` requests at a
    /// time; `on_done` sees each finished sample.
    pub fn judge_all(
        &self,
        samples: &[(RgbImage, String, RgbImage)],
        on_done: &(dyn Fn() + Sync),
    ) -> Result<Vec<Verdict>> {
        let encoded = samples
            .iter()
            .map(|(s, a, p)| Ok((png_base64(s)?, a.as_str(), png_base64(p)?)))
            .collect::<Result<Vec<_>>>()?;
        let next = AtomicUsize::new(0);
        let out: Mutex<Vec<Option<Verdict>>> = Mutex::new(vec![None; samples.len()]);
        let error: Mutex<Option<Error>> = Mutex::new(None);
        std::thread::scope(|scope| {
            for _ in 0..self.config.concurrency.min(samples.len().max(1)) {
                scope.spawn(|| {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= encoded.len() || error.lock().map(|e| e.is_some()).unwrap_or(true) {
                            break;
                        }
                        let (s, a, p) = &encoded[i];
                        let images = [s.as_str(), p.as_str()];
                        let verdict = (|| -> Result<Verdict> {
                            let success = self.ask(Question::Success, a, &images)?;
                            let minimal = self.ask(Question::Minimal, a, &images)?;
                            Ok(match (success, minimal) {
                                (Ok(s), Ok(m)) => Verdict::Scored(Judgement {
                                    success: s as f64,
                                    minimal: m as f64,
                                    score: s.min(m) as f64,
                                }),
                                (Err(r), _) | (_, Err(r)) => Verdict::Failed { reason: r },
                            })
                        })();
                        match verdict {
                            Ok(v) => out.lock().unwrap_or_else(|p| p.into_inner())[i] = Some(v),
                            Err(e) => {
                                *error.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
                                break;
                            }
                        }
                        on_done();
                    }
                });
            }
        });
        if let Some(e) = error.into_inner().unwrap_or_else(|p| p.into_inner()) {
            return Err(e);
        }
        Ok(out
            .into_inner()
            .unwrap_or_else(|p| p.into_inner())
            .into_iter()
            .map(|v| v.expect("every sample was judged"))
            .collect())
    }
}

/// How the VLM's scores compare with the exact judge's on the same samples (embedded world).
#[derive(Clone, Debug, Serialize)]
pub struct ExactAgreement {
    /// Spearman's rank correlation of the two scores (`None`: one side constant).
    pub spearman: Option<f64>,
    /// Mean absolute difference of the two scores (0-10 scale).
    pub mean_abs_diff: f64,
    /// Samples both scored.
    pub n: usize,
}

/// One judged sample.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct VlmSample {
    #[serde(rename = "task")] // AURORA calls a family a task
    pub(crate) family: String,
    pub(crate) instruction: String,
    pub(crate) vlm: Verdict,
    /// The exact judge's verdict where the row carries scene states.
    pub(crate) exact: Option<Judgement>,
}

/// What `dynaboot judge --vlm` writes: the scores in the embedded judge's format, over the
/// samples the VLM scored.
#[derive(Clone, Debug, Serialize)]
pub struct VlmReport {
    pub(crate) model: String,
    /// The scores, in the embedded judge's format.
    pub scores: Scores,
    /// Samples the VLM scored.
    pub judged: usize,
    /// Samples it gave no score for after every try.
    pub failed: usize,
    /// What was sent and cached.
    pub traffic: Traffic,
    /// How often the VLM agrees with the exact judge (rows with scene states).
    pub exact_agreement: Option<ExactAgreement>,
    pub(crate) samples: Vec<VlmSample>,
}

/// Aggregates `verdicts` of the `predictions` for `items` (per family, families weighing the
/// same) and, where the rows carry scene states and `exact` is given, compares with the exact
/// judge.
pub fn vlm_report(
    model: &str,
    items: &[EvalItem],
    predictions: &[RgbImage],
    verdicts: Vec<Verdict>,
    exact: Option<&Judge>,
    traffic: Traffic,
) -> Result<VlmReport> {
    let mut scored = Vec::new();
    let mut samples = Vec::new();
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for ((item, prediction), verdict) in items.iter().zip(predictions).zip(verdicts) {
        let exact = match (exact, &item.sidecar) {
            (Some(j), Some(sc)) => Some(j.judge(&sc.source_state, &sc.target_state, prediction)),
            _ => None,
        };
        if let Verdict::Scored(v) = &verdict {
            scored.push((
                item.family.as_str(),
                *v,
                l1(prediction, &item.target),
                psnr(&item.target, prediction).min(99.0),
            ));
            if let Some(e) = &exact {
                ours.push(v.score);
                theirs.push(e.score);
            }
        }
        samples.push(VlmSample {
            family: item.family.clone(),
            instruction: item.instruction.clone(),
            vlm: verdict,
            exact,
        });
    }
    let judged = scored.len();
    if judged == 0 {
        let why = samples
            .iter()
            .find_map(|s| match &s.vlm {
                Verdict::Failed { reason } => Some(reason.as_str()),
                Verdict::Scored(_) => None,
            })
            .unwrap_or("no samples");
        return Err(Error::Invalid(format!(
            "the VLM scored none of the {} samples, so there is no score: {why}",
            samples.len()
        )));
    }
    let scores = Scores::over_families(scored);
    Ok(VlmReport {
        model: model.to_string(),
        scores,
        judged,
        failed: samples.len() - judged,
        traffic,
        exact_agreement: (!ours.is_empty()).then(|| ExactAgreement {
            spearman: spearman(&ours, &theirs),
            mean_abs_diff: ours
                .iter()
                .zip(&theirs)
                .map(|(a, b)| (a - b).abs())
                .sum::<f64>()
                / ours.len() as f64,
            n: ours.len(),
        }),
        samples,
    })
}

/// `url` with any `user:password@` left out.
fn without_credentials(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let host_end = rest.find('/').unwrap_or(rest.len());
            match rest[..host_end].rsplit_once('@') {
                Some((_, host)) => format!("{scheme}://***@{host}{}", &rest[host_end..]),
                None => url.to_string(),
            }
        }
        None => url.to_string(),
    }
}

fn short(text: &str) -> String {
    let t: String = text.chars().take(200).collect();
    if t.len() < text.len() {
        format!("{t}…")
    } else {
        t
    }
}

/// The cache file a judge run writes beside its report unless told otherwise.
pub fn default_cache(report: &Path) -> PathBuf {
    report.with_extension("vlm-cache.jsonl")
}

#[cfg(all(test, feature = "serve"))]
mod tests {
    use super::*;
    use crate::test_server::TestServer;
    use axum::Json;
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::IntoResponse;
    use std::sync::Arc;

    #[test]
    fn only_a_bare_score_counts() {
        for (reply, want) in [
            ("7", Some(7)),
            (" 10\n", Some(10)),
            ("0.", Some(0)),
            ("11", None),
            ("7/10", None),
            ("Score: 7", None),
            ("seven", None),
            ("", None),
            ("-1", None),
            ("3 or 4", None),
            ("007", None),
        ] {
            assert_eq!(parse_score(reply), want, "{reply:?}");
        }
    }

    /// What the fake endpoint saw.
    #[derive(Default)]
    struct Seen {
        times: Vec<Instant>,
        /// Tries per (action, question) so far.
        tries: HashMap<String, usize>,
    }

    /// An OpenAI-compatible endpoint on a loopback port. It answers by the action's words:
    /// "act S M" scores S and M; "flaky" is rate limited once, then scores 5; "halting" first
    /// says "Seven", then 6; "chatty" never gives a bare number. A wrong key gets 401.
    fn fake_endpoint() -> (String, TestServer, Arc<Mutex<Seen>>) {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let state = seen.clone();
        let app = axum::Router::new()
            .route(
                "/moved/chat/completions",
                axum::routing::post(|| async {
                    (StatusCode::FOUND, [("location", "/v1/chat/completions")]).into_response()
                }),
            )
            .route(
                "/v1/chat/completions",
                axum::routing::post(
                    move |headers: HeaderMap, Json(body): Json<serde_json::Value>| {
                        let seen = state.clone();
                        async move {
                            if headers.get("authorization").and_then(|v| v.to_str().ok())
                                != Some("Bearer k")
                            {
                                return (StatusCode::UNAUTHORIZED, "bad key").into_response();
                            }
                            let content = &body["messages"][0]["content"];
                            let text = content[0]["text"].as_str().unwrap_or("").to_string();
                            assert_eq!(content.as_array().map(|c| c.len()), Some(3));
                            assert!(
                                content[1]["image_url"]["url"]
                                    .as_str()
                                    .unwrap()
                                    .starts_with("data:image/png;base64,")
                            );
                            let success = text.contains("How completely");
                            let action = text.split('"').nth(1).unwrap_or("").to_string();
                            let tries = {
                                let mut s = seen.lock().unwrap();
                                s.times.push(Instant::now());
                                let n = s.tries.entry(format!("{action}{success}")).or_default();
                                *n += 1;
                                *n
                            };
                            let words: Vec<&str> = action.split(' ').collect();
                            let reply = match words[0] {
                                "act" => words[if success { 1 } else { 2 }].to_string(),
                                "flaky" if tries == 1 => {
                                    return (StatusCode::TOO_MANY_REQUESTS, "slow down")
                                        .into_response();
                                }
                                "flaky" => "5".into(),
                                "halting" if tries == 1 => "Seven".into(),
                                "halting" => "6".into(),
                                _ => "I would give it a 7 out of 10".into(),
                            };
                            Json(serde_json::json!({
                                "choices": [{"message": {"role": "assistant", "content": reply}}]
                            }))
                            .into_response()
                        }
                    },
                ),
            );
        let server = TestServer::start(app);
        (format!("http://{}/v1", server.addr), server, seen)
    }

    fn config(url: &str, cache: Option<PathBuf>) -> VlmConfig {
        VlmConfig {
            url: url.into(),
            model: "fake".into(),
            api_key: Some("k".into()),
            concurrency: 3,
            requests_per_minute: None,
            retries: 2,
            timeout: Duration::from_secs(10),
            cache,
        }
    }

    fn samples(actions: &[&str]) -> Vec<(RgbImage, String, RgbImage)> {
        actions
            .iter()
            .map(|a| (RgbImage::new(4, 4), a.to_string(), RgbImage::new(4, 4)))
            .collect()
    }

    #[test]
    fn scores_retries_failures_and_a_rerun_from_the_cache() {
        let (url, _server, seen) = fake_endpoint();
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("cache.jsonl");
        let rows = samples(&["act 7 4", "flaky", "halting", "chatty"]);
        let judge = VlmJudge::new(config(&url, Some(cache.clone()))).unwrap();
        let done = AtomicUsize::new(0);
        let v = judge
            .judge_all(&rows, &|| {
                done.fetch_add(1, Ordering::Relaxed);
            })
            .unwrap();
        assert_eq!(done.load(Ordering::Relaxed), 4);
        let score = |v: &Verdict| match v {
            Verdict::Scored(j) => (j.success, j.minimal, j.score),
            Verdict::Failed { reason } => panic!("{reason}"),
        };
        assert_eq!(score(&v[0]), (7.0, 4.0, 4.0));
        assert_eq!(score(&v[1]), (5.0, 5.0, 5.0));
        assert_eq!(score(&v[2]), (6.0, 6.0, 6.0));
        match &v[3] {
            Verdict::Failed { reason } => {
                assert!(
                    reason.contains("not a score") && reason.contains("3 tries"),
                    "{reason}"
                )
            }
            s => panic!("a chatty reply was scored: {s:?}"),
        }
        // 2 + 4 + 4 + 6 (chatty: both questions, 3 tries each).
        assert_eq!(judge.traffic().requests, 16);

        // A rerun asks only what has no score yet.
        let again = VlmJudge::new(config(&url, Some(cache))).unwrap();
        let v2 = again.judge_all(&rows, &|| {}).unwrap();
        assert_eq!(v2[..3], v[..3]);
        assert_eq!(again.traffic().cached, 6);
        assert_eq!(again.traffic().requests, 6);
        assert_eq!(seen.lock().unwrap().times.len(), 22);
    }

    #[test]
    fn a_refused_key_fails_at_once_and_the_rate_limit_spaces_requests() {
        let (url, _server, seen) = fake_endpoint();
        let bad = VlmJudge::new(VlmConfig {
            api_key: Some("wrong".into()),
            ..config(&url, None)
        })
        .unwrap();
        match &bad.judge_all(&samples(&["act 1 1"]), &|| {}).unwrap()[0] {
            Verdict::Failed { reason } => assert!(reason.contains("refused the key"), "{reason}"),
            s => panic!("{s:?}"),
        }
        assert_eq!(bad.traffic().retries, 0);

        let limited = VlmJudge::new(VlmConfig {
            requests_per_minute: Some(600.0),
            ..config(&url, None)
        })
        .unwrap();
        let before = seen.lock().unwrap().times.len();
        limited
            .judge_all(&samples(&["act 1 2", "act 3 4", "act 5 6"]), &|| {})
            .unwrap();
        let times = seen.lock().unwrap().times[before..].to_vec();
        assert_eq!(times.len(), 6);
        let mut sorted = times.clone();
        sorted.sort();
        // 600 a minute: six starts 100 ms apart span 500 ms. Read on the server's side, where a
        // loaded machine may delay one arrival (two then land closer than the client spaced
        // them), so the check is on the whole span, with 100 ms of slack; unlimited, the six
        // arrive within a few milliseconds.
        let span = sorted[5] - sorted[0];
        assert!(span >= Duration::from_millis(400), "{span:?}");

        let e = VlmJudge::new(VlmConfig {
            url: "localhost:8000".into(),
            ..config(&url, None)
        })
        .err()
        .unwrap()
        .to_string();
        assert!(e.contains("http://"), "{e}");
    }

    #[test]
    fn no_redirect_is_followed_and_nothing_judged_is_no_score() {
        let (url, _server, seen) = fake_endpoint();
        // The redirect leads to a working endpoint: followed, it would give a score.
        let moved = url.replace("/v1", "/moved");
        let judge = VlmJudge::new(config(&moved, None)).unwrap();
        let verdicts = judge.judge_all(&samples(&["act 7 7"]), &|| {}).unwrap();
        match &verdicts[0] {
            Verdict::Failed { reason } => {
                assert!(
                    reason.contains("302") && reason.contains("redirects to"),
                    "{reason}"
                )
            }
            s => panic!("a redirect was followed: {s:?}"),
        }
        assert_eq!(judge.traffic().retries, 0);
        assert!(
            seen.lock().unwrap().times.is_empty(),
            "the redirect reached the endpoint"
        );
        // Nothing scored is no score at all, with the reason.
        let items = crate::eval::test_split_items(1, 64);
        let predictions: Vec<RgbImage> = items.iter().map(|i| i.source.clone()).collect();
        let failed = vec![
            Verdict::Failed {
                reason: "HTTP 500: down".into()
            };
            items.len()
        ];
        let e = vlm_report("fake", &items, &predictions, failed, None, judge.traffic())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("none of the 4") && e.contains("HTTP 500: down"),
            "{e}"
        );
    }

    #[test]
    fn the_cache_is_the_endpoints_and_holds_only_scores_and_urls_hide_passwords() {
        let (url, _server, seen) = fake_endpoint();
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("cache.jsonl");
        let judge = VlmJudge::new(config(&url, Some(cache.clone()))).unwrap();
        judge.judge_all(&samples(&["act 3 3"]), &|| {}).unwrap();
        // The same questions to another endpoint are asked there, not read from the cache.
        let other = url.replace("127.0.0.1", "localhost");
        let elsewhere = VlmJudge::new(config(&other, Some(cache.clone()))).unwrap();
        elsewhere.judge_all(&samples(&["act 3 3"]), &|| {}).unwrap();
        assert_eq!(elsewhere.traffic().cached, 0);
        // A cached score out of range is asked again.
        let text = std::fs::read_to_string(&cache).unwrap();
        std::fs::write(&cache, text.replace("\"score\":3", "\"score\":99")).unwrap();
        let again = VlmJudge::new(config(&url, Some(cache))).unwrap();
        again.judge_all(&samples(&["act 3 3"]), &|| {}).unwrap();
        assert_eq!((again.traffic().cached, again.traffic().requests), (0, 2));
        assert_eq!(seen.lock().unwrap().times.len(), 6);
        assert_eq!(
            without_credentials("https://me:secret@host:8/v1/chat/completions"),
            "https://***@host:8/v1/chat/completions"
        );
        assert_eq!(without_credentials("http://host/a@b"), "http://host/a@b");
    }
}
