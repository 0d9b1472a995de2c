//! The shared REST client against a real HTTP server on 127.0.0.1: weight budget, 429/418 pauses
//! shared by clones, body cap, status classification, and URL secrets kept out of error texts.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use tickflow::transport::{snapshot_backoff, RestBudget, RestClient, RestConfig, RestError};

/// Every request the server saw: path and arrival time.
type Log = Arc<Mutex<Vec<(String, Instant)>>>;

struct Server {
    base: String,
    log: Log,
}

impl Server {
    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    fn arrivals(&self, path: &str) -> Vec<Instant> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|(p, _)| p == path)
            .map(|(_, t)| *t)
            .collect()
    }
}

async fn handler(State(log): State<Log>, uri: Uri) -> Response {
    let path = uri.path().to_owned();
    log.lock().unwrap().push((path.clone(), Instant::now()));
    match path.as_str() {
        "/depth" | "/ok" => {
            (StatusCode::OK, r#"{"lastUpdateId":1,"bids":[],"asks":[]}"#).into_response()
        }
        "/r429" => (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, "2")],
            "slow down",
        )
            .into_response(),
        "/r429-bare" => (StatusCode::TOO_MANY_REQUESTS, "slow down").into_response(),
        "/r429-huge" => (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, "100000")],
            "",
        )
            .into_response(),
        "/r418" => (StatusCode::IM_A_TEAPOT, "banned").into_response(),
        "/big" => (StatusCode::OK, "a".repeat(10_000)).into_response(),
        "/exact" => (StatusCode::OK, "b".repeat(1024)).into_response(),
        "/big-stream" => {
            let chunks = (0..10).map(|_| Ok::<_, std::io::Error>(vec![b'c'; 1000]));
            (
                StatusCode::OK,
                Body::from_stream(futures::stream::iter(chunks)),
            )
                .into_response()
        }
        "/not-utf8" => (StatusCode::OK, vec![0xff_u8, 0xfe, 0xfd]).into_response(),
        "/missing" => (StatusCode::NOT_FOUND, "x".repeat(300)).into_response(),
        "/unavailable" => (StatusCode::SERVICE_UNAVAILABLE, "maintenance").into_response(),
        "/slow" => {
            tokio::time::sleep(Duration::from_secs(5)).await;
            (StatusCode::OK, "late").into_response()
        }
        _ => (StatusCode::INTERNAL_SERVER_ERROR, "unknown test path").into_response(),
    }
}

async fn start_server() -> Server {
    let log: Log = Arc::default();
    let app = Router::new().fallback(handler).with_state(log.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    Server {
        base: format!("http://{addr}"),
        log,
    }
}

fn client(weight_per_minute: u32, burst: u32) -> RestClient {
    RestClient::new(
        RestBudget {
            weight_per_minute,
            burst,
        },
        1 << 20,
        Duration::from_secs(5),
    )
}

/// Largest total weight that arrived in any half-open 1-second window `[t, t + 1 s)`.
fn max_weight_in_any_second(mut arrivals: Vec<Instant>, weight: u32) -> u32 {
    arrivals.sort();
    let mut max = 0;
    let mut end = 0;
    for start in 0..arrivals.len() {
        while end < arrivals.len() && arrivals[end] - arrivals[start] < Duration::from_secs(1) {
            end += 1;
        }
        max = max.max((end - start) as u32 * weight);
    }
    max
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_symbols_stay_inside_the_weight_budget() {
    // 200 symbols, one depth snapshot of weight 5 each = 1000 weight.
    // Budget: 7200 weight/min = 120 weight/s refill, burst 50.
    // Bound for any 1-second window: burst + one second of refill = 50 + 120 = 170 weight.
    // Least time for the last request: (1000 - 50) / 120 s = 7.92 s; the test takes about 8 s.
    const SYMBOLS: usize = 200;
    const WEIGHT: u32 = 5;
    const BOUND_PER_SECOND: u32 = 50 + 7200 / 60;
    let server = start_server().await;
    let client = client(7200, 50);
    let started = Instant::now();

    let mut tasks = Vec::new();
    for _ in 0..SYMBOLS {
        let client = client.clone();
        let url = server.url("/depth");
        tasks.push(tokio::spawn(async move { client.get(&url, WEIGHT).await }));
    }
    for task in tasks {
        let body = task.await.unwrap().unwrap();
        assert!(body.contains("lastUpdateId"), "{body}");
    }
    let elapsed = started.elapsed();

    let arrivals = server.arrivals("/depth");
    assert_eq!(arrivals.len(), SYMBOLS);
    assert_eq!(client.requests_sent(), SYMBOLS as u64);
    let worst = max_weight_in_any_second(arrivals.clone(), WEIGHT);
    assert!(
        worst <= BOUND_PER_SECOND,
        "{worst} weight arrived within one second, bound {BOUND_PER_SECOND}"
    );
    // The limiter really spaced them out: the burst went at once, the rest at the refill rate.
    let first = *arrivals.iter().min().unwrap();
    let last = *arrivals.iter().max().unwrap();
    assert!(
        last - first >= Duration::from_millis(7_500),
        "spread only {:?}",
        last - first
    );
    assert!(elapsed < Duration::from_secs(15), "took {elapsed:?}");
}

#[tokio::test]
async fn a_429_pauses_every_clone_for_retry_after() {
    let server = start_server().await;
    let client = client(60_000, 100);
    let clone = client.clone();

    let err = client.get(&server.url("/r429"), 1).await.unwrap_err();
    assert_eq!(
        err,
        RestError::RateLimited {
            retry_after: Duration::from_secs(2)
        }
    );
    assert_eq!(err.retry_after(), Some(Duration::from_secs(2)));
    assert!(err.is_retryable());
    assert_eq!(err.kind(), "rate_limited");

    let body = clone.get(&server.url("/ok"), 1).await.unwrap();
    assert!(body.contains("lastUpdateId"));

    let limited = server.arrivals("/r429");
    let ok = server.arrivals("/ok");
    assert_eq!((limited.len(), ok.len()), (1, 1));
    let gap = ok[0] - limited[0];
    assert!(
        gap >= Duration::from_secs(2),
        "second request reached the server after {gap:?}"
    );
    assert!(gap < Duration::from_secs(4), "paused far too long: {gap:?}");
    assert_eq!(client.requests_sent(), 2, "clones share one counter");
}

#[tokio::test]
async fn a_418_without_retry_after_uses_the_configured_default() {
    let server = start_server().await;
    let mut config = RestConfig::new(
        RestBudget {
            weight_per_minute: 60_000,
            burst: 100,
        },
        1 << 20,
        Duration::from_secs(5),
    );
    config.default_retry_after_418 = Duration::from_secs(1);
    let client = RestClient::with_config(config);

    let err = client.get(&server.url("/r418"), 1).await.unwrap_err();
    assert_eq!(
        err,
        RestError::RateLimited {
            retry_after: Duration::from_secs(1)
        }
    );
    assert!(err.is_retryable());

    client.clone().get(&server.url("/ok"), 1).await.unwrap();
    let gap = server.arrivals("/ok")[0] - server.arrivals("/r418")[0];
    assert!(
        gap >= Duration::from_secs(1),
        "second request reached the server after {gap:?}"
    );
    assert!(gap < Duration::from_secs(3), "paused far too long: {gap:?}");
}

#[tokio::test]
async fn a_bare_429_uses_its_default_and_huge_retry_after_is_capped() {
    let server = start_server().await;
    let mut config = RestConfig::new(
        RestBudget {
            weight_per_minute: 60_000,
            burst: 100,
        },
        1 << 20,
        Duration::from_secs(5),
    );
    config.default_retry_after_429 = Duration::from_millis(300);
    config.max_retry_after = Duration::from_millis(700);
    let client = RestClient::with_config(config);

    let err = client.get(&server.url("/r429-bare"), 1).await.unwrap_err();
    assert_eq!(err.retry_after(), Some(Duration::from_millis(300)));

    // Retry-After: 100000 s is capped to 700 ms, and that capped pause is what the client takes.
    let err = client.get(&server.url("/r429-huge"), 1).await.unwrap_err();
    assert_eq!(err.retry_after(), Some(Duration::from_millis(700)));
    client.get(&server.url("/ok"), 1).await.unwrap();
    let gap = server.arrivals("/ok")[0] - server.arrivals("/r429-huge")[0];
    assert!(gap >= Duration::from_millis(700), "{gap:?}");
    assert!(gap < Duration::from_secs(3), "{gap:?}");
}

#[test]
fn config_defaults_match_the_documented_ones() {
    let budget = RestBudget {
        weight_per_minute: 2400,
        burst: 100,
    };
    let config = RestConfig::new(budget, 4096, Duration::from_secs(3));
    assert_eq!(config.budget, budget);
    assert_eq!(config.max_body_bytes, 4096);
    assert_eq!(config.timeout, Duration::from_secs(3));
    assert_eq!(config.default_retry_after_429, Duration::from_secs(1));
    assert_eq!(config.default_retry_after_418, Duration::from_secs(60));
    assert_eq!(config.max_retry_after, Duration::from_secs(600));
}

#[tokio::test]
async fn oversized_bodies_are_refused_and_not_retryable() {
    let server = start_server().await;
    let client = RestClient::new(
        RestBudget {
            weight_per_minute: 60_000,
            burst: 100,
        },
        1024,
        Duration::from_secs(5),
    );

    // With a Content-Length.
    let err = client.get(&server.url("/big"), 1).await.unwrap_err();
    assert_eq!(err, RestError::BodyTooLarge { limit: 1024 });
    assert!(!err.is_retryable());
    assert_eq!(err.kind(), "body_too_large");

    // Chunked, no Content-Length: caught while reading chunks.
    let err = client.get(&server.url("/big-stream"), 1).await.unwrap_err();
    assert_eq!(err, RestError::BodyTooLarge { limit: 1024 });

    // Exactly at the cap is fine.
    let body = client.get(&server.url("/exact"), 1).await.unwrap();
    assert_eq!(body.len(), 1024);

    let err = client.get(&server.url("/not-utf8"), 1).await.unwrap_err();
    assert!(matches!(err, RestError::Decode(_)), "{err:?}");
    assert!(!err.is_retryable());
}

#[tokio::test]
async fn statuses_are_classified() {
    let server = start_server().await;
    let client = client(60_000, 100);

    let err = client.get(&server.url("/missing"), 1).await.unwrap_err();
    assert_eq!(
        err,
        RestError::Status {
            status: 404,
            body_prefix: "x".repeat(200)
        }
    );
    assert!(!err.is_retryable());
    assert_eq!(err.kind(), "status_4xx");
    assert_eq!(err.retry_after(), None);

    let err = client
        .get(&server.url("/unavailable"), 1)
        .await
        .unwrap_err();
    assert_eq!(
        err,
        RestError::Status {
            status: 503,
            body_prefix: "maintenance".to_owned()
        }
    );
    assert!(err.is_retryable());
    assert_eq!(err.kind(), "status_5xx");

    // A 404/503 does not pause the client (a 1 s pause would show): the next request goes straight out.
    let before = Instant::now();
    client.get(&server.url("/ok"), 1).await.unwrap();
    assert!(before.elapsed() < Duration::from_millis(900));
}

#[tokio::test]
async fn error_texts_never_contain_the_query_or_userinfo() {
    let client = RestClient::new(
        RestBudget {
            weight_per_minute: 60_000,
            burst: 100,
        },
        1 << 20,
        Duration::from_millis(500),
    );

    // The premise: reqwest itself puts the URL, query included, into its error text.
    let raw = reqwest::get("http://127.0.0.1:1/x?apikey=SECRET")
        .await
        .unwrap_err();
    assert!(raw.to_string().contains("SECRET"), "{raw}");

    let err = client
        .get("http://127.0.0.1:1/x?apikey=SECRET", 1)
        .await
        .unwrap_err();
    assert!(matches!(err, RestError::Transport(_)), "{err:?}");
    assert!(err.is_retryable());
    assert_eq!(err.kind(), "transport");
    for text in [err.to_string(), format!("{err:?}")] {
        assert!(!text.contains("SECRET"), "{text}");
        assert!(!text.contains("apikey"), "{text}");
    }

    let err = client
        .get("http://alice:PASSWORD@127.0.0.1:1/x", 1)
        .await
        .unwrap_err();
    for text in [err.to_string(), format!("{err:?}")] {
        assert!(!text.contains("PASSWORD"), "{text}");
        assert!(!text.contains("alice"), "{text}");
    }

    // A timeout (reqwest's timeout errors carry the URL too).
    let server = start_server().await;
    let started = Instant::now();
    let err = client
        .get(&server.url("/slow?apikey=SECRET"), 1)
        .await
        .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "timeout not applied"
    );
    assert!(matches!(err, RestError::Transport(_)), "{err:?}");
    assert!(err.is_retryable());
    for text in [err.to_string(), format!("{err:?}")] {
        assert!(!text.contains("SECRET"), "{text}");
    }
}

#[tokio::test]
async fn a_weight_above_burst_is_clamped_instead_of_waiting_forever() {
    let server = start_server().await;
    let client = client(600, 5);
    let body = tokio::time::timeout(Duration::from_secs(5), client.get(&server.url("/ok"), 100))
        .await
        .expect("a weight above burst must not wait forever")
        .unwrap();
    assert!(body.contains("lastUpdateId"));
    // Weight 0 counts as 1 and also goes out.
    client.get(&server.url("/ok"), 0).await.unwrap();
    assert_eq!(server.arrivals("/ok").len(), 2);
}

#[test]
fn snapshot_backoff_grows_with_jitter_inside_bounds() {
    let min = Duration::from_millis(100);
    let max = Duration::from_secs(10);
    let delays: Vec<Duration> = snapshot_backoff(min, max).take(40).collect();
    assert_eq!(delays.len(), 40, "never runs out");
    assert!(delays.iter().all(|d| *d >= min && *d <= max), "{delays:?}");
    // First delay: min plus up to 100 % jitter.
    assert!(delays[0] <= min * 2, "{delays:?}");
    // It grows: after ten doublings the base is at its ceiling of max / 2.
    assert!(delays[20..].iter().all(|d| *d >= max / 2), "{delays:?}");
    // Jitter: two sequences differ.
    let other: Vec<Duration> = snapshot_backoff(min, max).take(40).collect();
    assert_ne!(delays, other);

    // A max below min is raised to min.
    let flat: Vec<Duration> = snapshot_backoff(min, Duration::from_millis(10))
        .take(5)
        .collect();
    assert!(flat.iter().all(|d| *d == min), "{flat:?}");
}
