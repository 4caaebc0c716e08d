//! The rating server (axum): a rater opens their link, rates the items in their own order with
//! the candidates shuffled and unlabelled, can go back and change a judgment, and can stop and
//! resume. The page never learns which system made a candidate: it sees slots, which only the
//! server maps to systems (through the rater's seed).
//!
//! Bound to a loopback address it serves anyone on this machine; bound beyond it, every request
//! must carry the study's secret (`?key=`), and every rater their own token in the path.

use super::order::{candidate_order, item_order};
use super::store::{Image, Rater, Study};
use crate::error::{Error, Result};
use axum::extract::{Path as UrlPath, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

/// The rating page: plain HTML and a little JS, no build step.
const PAGE: &str = include_str!("page.html");

struct Shared {
    study: Mutex<Study>,
    /// Required in every request (`?key=`) when the server is reachable beyond this machine.
    secret: Option<String>,
    name: String,
}

type AppState = Arc<Shared>;

/// An error as the page sees it: a status and a sentence.
struct Failure(StatusCode, String);

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        (self.0, self.1).into_response()
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        match e {
            Error::Invalid(m) => Failure(StatusCode::BAD_REQUEST, m),
            Error::NotFound(m) => Failure(StatusCode::NOT_FOUND, m),
            e => Failure(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        }
    }
}

type Answer<T> = std::result::Result<T, Failure>;

/// Runs `f` on the study on a blocking thread (SQLite calls block).
async fn with_study<T: Send + 'static>(
    state: &AppState,
    f: impl FnOnce(&mut Study) -> Result<T> + Send + 'static,
) -> Answer<T> {
    let state = state.clone();
    tokio::task::spawn_blocking(move || {
        let mut study = state.study.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut study)
    })
    .await
    .map_err(|e| Failure(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
    .map_err(Failure::from)
}

fn rater(study: &Study, token: &str) -> Result<Rater> {
    study
        .rater_by_token(token)?
        .ok_or_else(|| Error::NotFound("unknown rater link".into()))
}

#[derive(Deserialize)]
struct Key {
    key: Option<String>,
}

/// Refuses a request without the study's secret when one is required.
async fn check_secret(
    State(state): State<AppState>,
    Query(key): Query<Key>,
    request: Request,
    next: Next,
) -> Response {
    match &state.secret {
        Some(secret) if key.key.as_deref() != Some(secret.as_str()) => (
            StatusCode::FORBIDDEN,
            "this study is served beyond localhost: open the link with its key (?key=...)",
        )
            .into_response(),
        _ => next.run(request).await,
    }
}

#[derive(Serialize)]
struct ItemState {
    id: i64,
    done: bool,
}

#[derive(Serialize)]
struct RaterState {
    study: String,
    rater: String,
    /// The rater's items in their order.
    items: Vec<ItemState>,
    /// Position of the first item not yet rated (`items.len()` when all are).
    next: usize,
}

async fn state_of(
    State(state): State<AppState>,
    UrlPath(token): UrlPath<String>,
) -> Answer<Json<RaterState>> {
    let name = state.name.clone();
    let s = with_study(&state, move |study| {
        let r = rater(study, &token)?;
        let ids: Vec<i64> = study.items()?.iter().map(|i| i.id).collect();
        let done: std::collections::BTreeSet<i64> = study
            .judgments()?
            .into_iter()
            .filter(|j| j.rater == r.id)
            .map(|j| j.item)
            .collect();
        let items: Vec<ItemState> = item_order(&ids, r.seed)
            .into_iter()
            .map(|id| ItemState {
                id,
                done: done.contains(&id),
            })
            .collect();
        let next = items.iter().position(|i| !i.done).unwrap_or(items.len());
        Ok(RaterState {
            study: name,
            rater: r.name,
            items,
            next,
        })
    })
    .await?;
    Ok(Json(s))
}

#[derive(Serialize)]
struct ItemView {
    id: i64,
    instruction: String,
    /// Candidates shown, as slots 0..k.
    candidates: usize,
    /// The rater's saved judgment, as slots.
    best: Option<usize>,
    worst: Option<usize>,
}

/// The systems of `item` in the order `rater` sees them.
fn shown(study: &Study, r: &Rater, item: i64) -> Result<Vec<i64>> {
    let systems: Vec<i64> = study.systems()?.iter().map(|s| s.id).collect();
    Ok(candidate_order(&systems, r.seed, item))
}

async fn item_of(
    State(state): State<AppState>,
    UrlPath((token, item)): UrlPath<(String, i64)>,
) -> Answer<Json<ItemView>> {
    let view = with_study(&state, move |study| {
        let r = rater(study, &token)?;
        let it = study
            .items()?
            .into_iter()
            .find(|i| i.id == item)
            .ok_or_else(|| Error::NotFound(format!("item {item}: no such item")))?;
        let order = shown(study, &r, item)?;
        let saved = study
            .judgments()?
            .into_iter()
            .find(|j| j.rater == r.id && j.item == item);
        let slot = |system: i64| order.iter().position(|&s| s == system);
        Ok(ItemView {
            id: item,
            instruction: it.instruction,
            candidates: order.len(),
            best: saved.as_ref().and_then(|j| slot(j.best)),
            worst: saved.as_ref().and_then(|j| slot(j.worst)),
        })
    })
    .await?;
    Ok(Json(view))
}

async fn image_of(
    State(state): State<AppState>,
    UrlPath((token, item, which)): UrlPath<(String, i64, String)>,
) -> Answer<Response> {
    let png = with_study(&state, move |study| {
        let r = rater(study, &token)?;
        let image = if which == "source" {
            Image::Source
        } else {
            let slot: usize = which
                .parse()
                .map_err(|_| Error::Invalid(format!("image {which:?}: give `source` or a slot")))?;
            let order = shown(study, &r, item)?;
            Image::Candidate(*order.get(slot).ok_or_else(|| {
                Error::Invalid(format!("slot {slot}: item {item} has {}", order.len()))
            })?)
        };
        study
            .image(item, image)?
            .ok_or_else(|| Error::NotFound(format!("item {item}: no such image")))
    })
    .await?;
    Ok((
        [
            (header::CONTENT_TYPE, "image/png"),
            (header::CACHE_CONTROL, "private, max-age=3600"),
        ],
        png,
    )
        .into_response())
}

#[derive(Deserialize)]
struct Submission {
    item: i64,
    best: usize,
    worst: usize,
    ms: i64,
}

#[derive(Serialize)]
struct Saved {
    revisions: i64,
    done: usize,
}

async fn judge(
    State(state): State<AppState>,
    UrlPath(token): UrlPath<String>,
    Json(s): Json<Submission>,
) -> Answer<Json<Saved>> {
    let saved = with_study(&state, move |study| {
        let r = rater(study, &token)?;
        // Checked on slots: a message about system ids would tell the rater which is which.
        if s.best == s.worst {
            return Err(Error::Invalid(
                "the best and the worst prediction must differ".into(),
            ));
        }
        let order = shown(study, &r, s.item)?;
        let system = |slot: usize| {
            order.get(slot).copied().ok_or_else(|| {
                Error::Invalid(format!("slot {slot}: item {} has {}", s.item, order.len()))
            })
        };
        let j = study.judge(
            r.id,
            s.item,
            &order,
            system(s.best)?,
            system(s.worst)?,
            s.ms,
        )?;
        let done = study
            .judgments()?
            .iter()
            .filter(|j| j.rater == r.id)
            .count();
        Ok(Saved {
            revisions: j.revisions,
            done,
        })
    })
    .await?;
    Ok(Json(saved))
}

async fn page() -> Html<&'static str> {
    Html(PAGE)
}

async fn home(State(state): State<AppState>) -> Html<String> {
    Html(format!(
        "<!doctype html><meta charset=utf-8><title>{0}</title><p>Study <b>{0}</b>: open the \
         rater link you were given.</p>",
        crate::eval::report::escape(&state.name)
    ))
}

/// The server's routes over `study` (secret required when `remote`).
pub(crate) fn router(study: Study, remote: bool) -> Result<Router> {
    let secret = remote.then(|| study.secret()).transpose()?;
    let name = study.info()?.name;
    let state: AppState = Arc::new(Shared {
        study: Mutex::new(study),
        secret,
        name,
    });
    Ok(Router::new()
        .route("/", get(home))
        .route("/r/{token}", get(page))
        .route("/api/{token}/state", get(state_of))
        .route("/api/{token}/item/{item}", get(item_of))
        .route("/api/{token}/image/{item}/{which}", get(image_of))
        .route("/api/{token}/judge", post(judge))
        .layer(middleware::from_fn_with_state(state.clone(), check_secret))
        .with_state(state))
}

/// The link a rater opens.
pub fn rater_link(addr: SocketAddr, rater: &Rater, secret: Option<&str>) -> String {
    let key = secret.map(|s| format!("?key={s}")).unwrap_or_default();
    // Served on every interface (0.0.0.0, [::]): a rater reaches it by this machine's name.
    let host = match addr.ip().is_unspecified() {
        true => std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "localhost".into()),
        false => match addr {
            SocketAddr::V4(a) => a.ip().to_string(),
            SocketAddr::V6(a) => format!("[{}]", a.ip()),
        },
    };
    format!("http://{host}:{}/r/{}{key}", addr.port(), rater.token)
}

/// Serves `study` on `listener` until `shutdown` resolves. Beyond a loopback address the
/// study's secret is required in every request.
pub async fn serve(
    study: Study,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let addr = listener
        .local_addr()
        .map_err(|e| Error::Invalid(format!("listener: {e}")))?;
    let app = router(study, !addr.ip().is_loopback())?;
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|e| Error::Invalid(format!("serving on {addr}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_name_a_host_a_rater_can_reach() {
        let rater = Rater {
            id: 1,
            name: "r".into(),
            token: "t0k".into(),
            seed: 0,
        };
        let link = |a: &str| rater_link(a.parse().unwrap(), &rater, Some("s"));
        assert_eq!(link("127.0.0.1:8090"), "http://127.0.0.1:8090/r/t0k?key=s");
        assert_eq!(link("[::1]:8090"), "http://[::1]:8090/r/t0k?key=s");
        for every in ["0.0.0.0:8090", "[::]:8090"] {
            let l = link(every);
            assert!(!l.contains("0.0.0.0") && !l.contains("[::]"), "{l}");
            assert!(l.ends_with(":8090/r/t0k?key=s"), "{l}");
        }
    }
    use crate::study::store::tests::small_study;
    use crate::test_server::TestServer;
    use std::io::{Read, Write};

    /// One HTTP/1.1 request over a fresh connection: (status, body).
    fn http(addr: SocketAddr, method: &str, path: &str, body: Option<&str>) -> (u16, Vec<u8>) {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        let body = body.unwrap_or("");
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).unwrap();
        let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        let head = String::from_utf8_lossy(&raw[..split]).to_string();
        let status = head.split(' ').nth(1).unwrap().parse().unwrap();
        (status, raw[split + 4..].to_vec())
    }

    fn json(body: &[u8]) -> serde_json::Value {
        serde_json::from_slice(body).unwrap_or_else(|e| panic!("{e}: {body:?}"))
    }

    /// Serves `router(study, remote)` on a loopback port until dropped.
    fn start(study: Study, remote: bool) -> TestServer {
        TestServer::start(router(study, remote).unwrap())
    }

    #[test]
    fn a_rater_rates_blind_in_their_own_order_and_resumes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sqlite");
        let study = small_study(&path, 5);
        let alice = study.add_rater("alice").unwrap();
        let server = start(study, false);
        let addr = server.addr;
        let t = &alice.token;

        let (code, page) = http(addr, "GET", &format!("/r/{t}"), None);
        assert_eq!(code, 200);
        assert!(String::from_utf8_lossy(&page).contains("Best prediction"));
        let state = json(&http(addr, "GET", &format!("/api/{t}/state"), None).1);
        let order: Vec<i64> = state["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["id"].as_i64().unwrap())
            .collect();
        assert_eq!(order, item_order(&[1, 2, 3, 4, 5], alice.seed));
        assert_eq!(state["next"], 0);

        // The item names no system; slot k is the k-th system of the rater's shuffle.
        let first = order[0];
        let (code, body) = http(addr, "GET", &format!("/api/{t}/item/{first}"), None);
        assert_eq!(code, 200);
        let text = String::from_utf8_lossy(&body).to_string();
        assert!(!text.contains("system"), "{text}");
        assert_eq!(json(&body)["candidates"], 3);
        let shuffle = candidate_order(&[1, 2, 3], alice.seed, first);
        let (code, png) = http(addr, "GET", &format!("/api/{t}/image/{first}/0"), None);
        assert_eq!(code, 200);
        let want = image::load_from_memory(&png).unwrap().to_rgb8();
        assert_eq!(want, crate::study::store::tests::pixel(shuffle[0] as u8));

        // Save slot 0 best, slot 2 worst; a bad submission changes nothing.
        let judge = |best: usize, worst: usize| {
            http(
                addr,
                "POST",
                &format!("/api/{t}/judge"),
                Some(&format!(
                    r#"{{"item":{first},"best":{best},"worst":{worst},"ms":1200}}"#
                )),
            )
        };
        let (code, body) = judge(1, 1);
        assert_eq!(code, 400, "{}", String::from_utf8_lossy(&body));
        assert!(!String::from_utf8_lossy(&body).contains('['));
        assert_eq!(judge(0, 7).0, 400);
        let (code, body) = judge(0, 2);
        assert_eq!(code, 200);
        assert_eq!(json(&body)["done"], 1);
        let item = json(&http(addr, "GET", &format!("/api/{t}/item/{first}"), None).1);
        assert_eq!(
            (item["best"].as_u64(), item["worst"].as_u64()),
            (Some(0), Some(2))
        );
        // Resuming starts at the next unrated item.
        let state = json(&http(addr, "GET", &format!("/api/{t}/state"), None).1);
        assert_eq!(state["next"], 1);

        assert_eq!(http(addr, "GET", "/api/nobody/state", None).0, 404);
        assert_eq!(http(addr, "GET", &format!("/api/{t}/item/99"), None).0, 404);
        drop(server);

        // What was saved is in the file, mapped back to systems.
        let study = Study::open(&path).unwrap();
        let j = study.judgments().unwrap();
        assert_eq!(j.len(), 1);
        assert_eq!(
            (j[0].best, j[0].worst, j[0].ms),
            (shuffle[0], shuffle[2], 1200)
        );
        assert_eq!(j[0].shown, shuffle);
    }

    #[test]
    fn beyond_localhost_every_request_needs_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let study = small_study(&dir.path().join("s.sqlite"), 2);
        let r = study.add_rater("r").unwrap();
        let secret = study.secret().unwrap();
        let server = start(study, true);
        let addr = server.addr;
        for path in [
            "/".to_string(),
            format!("/r/{}", r.token),
            format!("/api/{}/state", r.token),
        ] {
            assert_eq!(http(addr, "GET", &path, None).0, 403, "{path}");
            assert_eq!(http(addr, "GET", &format!("{path}?key=wrong"), None).0, 403);
            assert_eq!(
                http(addr, "GET", &format!("{path}?key={secret}"), None).0,
                200
            );
        }
        drop(server);
        let link = rater_link("10.0.0.1:80".parse().unwrap(), &r, Some(&secret));
        assert!(
            link.ends_with(&format!("/r/{}?key={secret}", r.token)),
            "{link}"
        );
    }
}
