//! Self-tests of the test support (tests/support): the fake Devin API, the recording receiver
//! and the Standard Webhooks verifier, all over real HTTP on loopback.

use crate::support;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::webhooks::{self, SignatureHeaders};
use support::{closed_port_url, pr, session, FakeDevin, Fault, FaultAt, Receiver, Reply};

const TOKEN: &str = "cog_test_token";
const WAIT: Duration = Duration::from_secs(5);

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client")
}

fn url(fake: &FakeDevin) -> String {
    format!("{}/v3/enterprise/sessions", fake.base_url())
}

/// GET with the default token and the given raw query string; (status, body text).
async fn get_raw(fake: &FakeDevin, query: &str) -> (u16, String) {
    let resp = client()
        .get(format!("{}?{query}", url(fake)))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("request");
    let status = resp.status().as_u16();
    (status, resp.text().await.expect("body"))
}

async fn get_json(fake: &FakeDevin, query: &str) -> (u16, Value) {
    let (status, body) = get_raw(fake, query).await;
    let v = serde_json::from_str(&body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"));
    (status, v)
}

fn ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|s| s["session_id"].as_str().expect("id").to_string())
        .collect()
}

/// Follows cursors from the start; returns every item id in order and the pages fetched.
async fn list_all(fake: &FakeDevin, query: &str) -> (Vec<String>, Vec<Value>) {
    let mut all = Vec::new();
    let mut pages = Vec::new();
    let mut after: Option<String> = None;
    for _ in 0..50 {
        let mut params: Vec<(String, String)> = support::fake_devin::parse_query(query);
        if let Some(a) = &after {
            params.push(("after".into(), a.clone()));
        }
        let resp = client()
            .get(url(fake))
            .query(&params)
            .bearer_auth(TOKEN)
            .send()
            .await
            .expect("request");
        assert_eq!(resp.status(), 200);
        let page: Value = resp.json().await.expect("page");
        all.extend(ids(&page));
        let next = page["has_next_page"].as_bool().expect("has_next_page");
        after = page["end_cursor"].as_str().map(str::to_string);
        pages.push(page);
        if !next {
            return (all, pages);
        }
    }
    panic!("more than 50 pages")
}

fn seed(fake: &FakeDevin, n: usize) -> Vec<String> {
    let ids: Vec<String> = (0..n).map(|i| format!("s{i}")).collect();
    fake.upsert_all(ids.iter().map(|id| session(id)));
    // Listing order: newest first.
    ids.into_iter().rev().collect()
}

// ------------------------------------------------------------------------------------------
// FakeDevin: listing

#[tokio::test]
async fn pagination_collects_every_session_once() {
    let fake = FakeDevin::start().await;
    let expected = seed(&fake, 7);
    let (all, pages) = list_all(&fake, "first=2").await;
    assert_eq!(all, expected);
    assert_eq!(pages.len(), 4);
    for p in &pages {
        assert_eq!(p["total"], 7);
    }
    let last = pages.last().expect("pages");
    assert_eq!(last["end_cursor"], Value::Null);
    assert_eq!(last["has_next_page"], false);
    assert_eq!(ids(&pages[0]).len(), 2);
    assert_eq!(fake.request_count(), 4);
    // Default page size is 100.
    let (_, pages) = list_all(&fake, "").await;
    assert_eq!(pages.len(), 1);
    // Sessions come back as stored, with every field.
    assert_eq!(
        pages[0]["items"][0],
        fake.get(&expected[0]).expect("stored")
    );
    let stored: Vec<Value> = fake.sessions();
    assert_eq!(stored.len(), 7);
    assert_eq!(pages[0]["items"], Value::Array(stored));
    fake.set_report_total(false);
    let (_, page) = get_json(&fake, "first=1").await;
    assert_eq!(page["total"], Value::Null);
    assert_eq!(page["has_next_page"], true);
}

#[tokio::test]
async fn keyset_cursor_neither_skips_nor_repeats_untouched_sessions() {
    let fake = FakeDevin::start().await;
    let expected = seed(&fake, 6); // s5 s4 s3 s2 s1 s0
    let (status, p0) = get_json(&fake, "first=2").await;
    assert_eq!(status, 200);
    assert_eq!(ids(&p0), vec!["s5", "s4"]);
    // Between pages: a new session (sorts first), an update, a removal of a seen session.
    fake.upsert(session("new"));
    fake.update("s1", |s| s["status"] = json!("exit"));
    fake.remove("s5");
    let cursor = p0["end_cursor"].as_str().expect("cursor").to_string();
    let mut seen = ids(&p0);
    let mut after = cursor;
    loop {
        let (status, p) = get_json(&fake, &format!("first=2&after={after}")).await;
        assert_eq!(status, 200);
        seen.extend(ids(&p));
        match p["end_cursor"].as_str() {
            Some(c) if p["has_next_page"] == true => after = c.to_string(),
            _ => break,
        }
    }
    assert_eq!(seen, expected);
}

#[tokio::test]
async fn filters_narrow_the_listing() {
    let fake = FakeDevin::start().await;
    let mut a = session("a");
    a["tags"] = json!(["team-payments", "x"]);
    a["origin"] = json!("slack");
    a["user_id"] = json!("user-a");
    a["category"] = json!("bug_fixing");
    a["playbook_id"] = json!("pb-1");
    a["schedule_id"] = json!("sch-1");
    a["pull_requests"] = json!([pr("https://github.com/acme/api/pull/1", "open")]);
    let mut b = session("b");
    b["tags"] = json!(["team-search"]);
    b["org_id"] = json!("org-other");
    b["service_user_id"] = json!("svc-1");
    b["user_id"] = Value::Null;
    b["pull_requests"] = json!([pr("https://github.com/acme/web/pull/9", "merged")]);
    let c = session("c");
    let (ca, cb, cc) = (
        a["created_at"].as_i64().expect("created"),
        b["created_at"].as_i64().expect("created"),
        c["created_at"].as_i64().expect("created"),
    );
    fake.upsert_all([a, b, c]);
    fake.update("c", |_| {});
    let uc = fake.get("c").expect("c")["updated_at"]
        .as_i64()
        .expect("updated");

    let cases: Vec<(String, Vec<&str>)> = vec![
        ("".into(), vec!["c", "b", "a"]),
        ("session_ids=a&session_ids=c".into(), vec!["c", "a"]),
        ("session_ids[]=b".into(), vec!["b"]),
        ("session_ids%5B%5D=b".into(), vec!["b"]),
        (format!("created_after={ca}"), vec!["c", "b"]),
        (format!("created_before={cc}"), vec!["b", "a"]),
        (format!("created_after={ca}&created_before={cc}"), vec!["b"]),
        (format!("created_after={cb}&created_before={cb}"), vec![]),
        (format!("updated_after={}", uc - 1), vec!["c"]),
        (format!("updated_after={uc}"), vec![]),
        (format!("updated_before={uc}"), vec!["b", "a"]),
        ("tags=team-payments&tags=team-search".into(), vec!["b", "a"]),
        ("tags[]=x".into(), vec!["a"]),
        ("tags=none".into(), vec![]),
        ("playbook_id=pb-1".into(), vec!["a"]),
        ("origins=slack&origins=api".into(), vec!["a"]),
        ("origins=webapp".into(), vec!["c", "b"]),
        ("schedule_id=sch-1".into(), vec!["a"]),
        ("user_ids=user-a".into(), vec!["a"]),
        ("user_ids=user-1".into(), vec!["c"]),
        ("service_user_ids=svc-1".into(), vec!["b"]),
        ("repo_names=acme/web".into(), vec!["b"]),
        ("repo_names=acme%2Fapi&repo_names=other/x".into(), vec!["a"]),
        ("category=bug_fixing".into(), vec!["a"]),
        ("org_ids=org-other".into(), vec!["b"]),
        ("org_ids=org-test&tags=x".into(), vec!["a"]),
        ("include_deleted_orgs=true".into(), vec!["c", "b", "a"]),
    ];
    for (query, want) in cases {
        let (status, page) = get_json(&fake, &query).await;
        assert_eq!(status, 200, "{query}: {page}");
        assert_eq!(ids(&page), want, "query {query:?}");
        assert_eq!(page["total"], want.len(), "total for {query:?}");
    }

    // The organization endpoint: restricted to its org, fewer filters.
    let org_url = |org: &str| format!("{}/v3/organizations/{org}/sessions", fake.base_url());
    let get_org = |org: &str, q: &str| {
        let u = format!("{}?{q}", org_url(org));
        async move {
            let resp = client()
                .get(u)
                .bearer_auth(TOKEN)
                .send()
                .await
                .expect("req");
            let status = resp.status().as_u16();
            (status, resp.json::<Value>().await.expect("json"))
        }
    };
    let (status, page) = get_org("org-test", "").await;
    assert_eq!((status, ids(&page)), (200, vec!["c".into(), "a".into()]));
    let (status, page) = get_org("org-other", "tags=team-search").await;
    assert_eq!((status, ids(&page)), (200, vec!["b".to_string()]));
    let (status, page) = get_org("org-test", "tags=x&first=1").await;
    assert_eq!((status, ids(&page)), (200, vec!["a".to_string()]));
    for q in [
        "user_ids=u",
        "org_ids=o",
        "repo_names=a/b",
        "category=other",
        "include_deleted_orgs=true",
        "service_user_ids=s",
        "bogus=1",
    ] {
        let (status, body) = get_org("org-test", q).await;
        assert_eq!(status, 422, "{q}: {body}");
        assert!(body["detail"].is_array(), "{body}");
    }
}

#[tokio::test]
async fn bad_queries_are_422() {
    let fake = FakeDevin::start().await;
    seed(&fake, 3);
    for q in [
        "first=0",
        "first=201",
        "first=-1",
        "first=abc",
        "created_after=1.5",
        "updated_before=yesterday",
        "after=not-a-cursor",
        "after=",
        "include_deleted_orgs=maybe",
        "tag=typo",
    ] {
        let (status, body) = get_json(&fake, q).await;
        assert_eq!(status, 422, "{q}: {body}");
        let detail = body["detail"].as_array().expect("detail list");
        assert!(!detail.is_empty(), "{q}: {body}");
        assert!(detail[0]["loc"][0] == "query", "{q}: {body}");
    }
    let (_, body) = get_json(&fake, "first=0").await;
    assert_eq!(body["detail"][0]["loc"], json!(["query", "first"]));
    for q in ["first=1", "first=200"] {
        assert_eq!(get_json(&fake, q).await.0, 200, "{q}");
    }
    fake.set_strict_params(false);
    assert_eq!(get_json(&fake, "tag=typo").await.0, 200);
}

#[tokio::test]
async fn authentication() {
    let fake = FakeDevin::start().await;
    seed(&fake, 1);
    let c = client();
    let resp = c.get(url(&fake)).send().await.expect("req");
    assert_eq!(resp.status(), 401);
    let body: Value = resp.json().await.expect("json");
    assert!(body["detail"].is_string(), "{body}");
    let resp = c
        .get(url(&fake))
        .bearer_auth("cog_wrong")
        .send()
        .await
        .expect("req");
    assert_eq!(resp.status(), 401);
    let resp = c
        .get(url(&fake))
        .header("authorization", TOKEN)
        .send()
        .await
        .expect("req");
    assert_eq!(resp.status(), 401, "token without Bearer");
    fake.forbid_token("cog_readonly");
    let resp = c
        .get(url(&fake))
        .bearer_auth("cog_readonly")
        .send()
        .await
        .expect("req");
    assert_eq!(resp.status(), 403);
    assert!(resp.json::<Value>().await.expect("json")["detail"].is_string());
    fake.set_token("cog_other");
    assert_eq!(
        c.get(url(&fake))
            .bearer_auth(TOKEN)
            .send()
            .await
            .expect("req")
            .status(),
        401
    );
    assert_eq!(
        c.get(url(&fake))
            .bearer_auth("cog_other")
            .send()
            .await
            .expect("req")
            .status(),
        200
    );
    let resp = c
        .get(format!("{}/v3/nope", fake.base_url()))
        .bearer_auth("cog_other")
        .send()
        .await
        .expect("req");
    assert_eq!(resp.status(), 404);
    let reqs = fake.requests();
    assert_eq!(
        reqs.iter().map(|r| r.status).collect::<Vec<_>>(),
        vec![401, 401, 401, 403, 401, 200, 404]
    );
    assert_eq!(reqs[0].authorization, None);
    assert_eq!(reqs[1].authorization.as_deref(), Some("Bearer cog_wrong"));
}

#[tokio::test]
async fn request_log_and_wait() {
    let fake = FakeDevin::start().await;
    let f2 = fake.clone();
    let task = tokio::spawn(async move {
        let _ = get_raw(&f2, "first=5&tags=a&tags[]=b%20c&repo_names=o%2Fr").await;
        let _ = get_raw(&f2, "").await;
    });
    let reqs = fake.wait_for_requests(2, WAIT).await;
    task.await.expect("task");
    let r = &reqs[0];
    assert_eq!(r.seq, 0);
    assert_eq!(r.method, "GET");
    assert_eq!(r.path, "/v3/enterprise/sessions");
    assert_eq!(r.query, "first=5&tags=a&tags[]=b%20c&repo_names=o%2Fr");
    assert_eq!(r.param("first"), Some("5"));
    assert_eq!(r.param_all("tags"), vec!["a", "b c"]);
    assert_eq!(r.param("repo_names"), Some("o/r"));
    assert_eq!(r.params[2], ("tags[]".to_string(), "b c".to_string()));
    assert_eq!(r.authorization.as_deref(), Some("Bearer cog_test_token"));
    assert_eq!(r.status, 200);
    assert!(r.is_listing());
    assert_eq!(reqs[1].query, "");
    assert_eq!(reqs[1].param("first"), None);
}

#[tokio::test]
#[should_panic(expected = "wanted 1 requests")]
async fn wait_for_requests_panics_on_timeout() {
    let fake = FakeDevin::start().await;
    fake.wait_for_requests(1, Duration::from_millis(50)).await;
}

#[tokio::test]
async fn update_advances_the_fake_clock() {
    let fake = FakeDevin::start().await;
    assert_eq!(fake.now(), support::fake_devin::CLOCK_START);
    let s = session("x");
    let created = s["created_at"].clone();
    fake.upsert(s);
    let v = fake.update("x", |s| s["status_detail"] = json!("waiting_for_user"));
    assert_eq!(v["updated_at"], support::fake_devin::CLOCK_START + 1);
    assert_eq!(v["created_at"], created);
    assert_eq!(
        fake.get("x").expect("x")["status_detail"],
        "waiting_for_user"
    );
    // The closure cannot set updated_at; upsert stores as given.
    let v = fake.update("x", |s| s["updated_at"] = json!(5));
    assert_eq!(v["updated_at"], support::fake_devin::CLOCK_START + 2);
    let mut s = v.clone();
    s["updated_at"] = json!(2_000_000_000);
    fake.upsert(s);
    let v = fake.update("x", |_| {});
    assert_eq!(v["updated_at"], 2_000_000_001i64);
    assert_eq!(fake.now(), 2_000_000_001);
    let v = fake.update("x", |_| {});
    assert_eq!(v["updated_at"], 2_000_000_002i64);
    assert_eq!(fake.advance_clock(10), 2_000_000_012);
    // Unknown fields and enum values are kept as data.
    fake.upsert(
        json!({"session_id": "odd", "status": "teleporting", "created_at": 1, "extra": {"a": 1}}),
    );
    assert_eq!(fake.len(), 2);
    assert_eq!(fake.sessions()[1]["extra"]["a"], 1);
    assert_eq!(fake.remove("odd").expect("odd")["status"], "teleporting");
    assert_eq!(fake.len(), 1);
    assert!(!fake.is_empty());
}

// ------------------------------------------------------------------------------------------
// FakeDevin: faults

#[tokio::test]
async fn fault_status_html_and_429() {
    let fake = FakeDevin::start().await;
    seed(&fake, 2);
    fake.inject(FaultAt::Request(0), Fault::status(500));
    fake.inject(FaultAt::Request(1), Fault::Html502);
    fake.inject(
        FaultAt::Request(2),
        Fault::TooMany {
            retry_after: Some("7".into()),
        },
    );
    fake.inject(FaultAt::Request(3), Fault::TooMany { retry_after: None });
    fake.inject(
        FaultAt::Request(4),
        Fault::Status {
            code: 422,
            body: "{\"detail\":\"nope\"}".into(),
            content_type: "application/json".into(),
            headers: vec![("x-custom".into(), "1".into())],
        },
    );
    let c = client();
    let send = || c.get(url(&fake)).bearer_auth(TOKEN).send();

    let r = send().await.expect("req");
    assert_eq!(r.status(), 500);
    assert_eq!(
        r.json::<Value>().await.expect("json")["detail"],
        "injected 500"
    );

    let r = send().await.expect("req");
    assert_eq!(r.status(), 502);
    assert!(r.headers()["content-type"]
        .to_str()
        .expect("ct")
        .starts_with("text/html"));
    assert!(r.text().await.expect("text").contains("<html>"));

    let r = send().await.expect("req");
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "7");

    let r = send().await.expect("req");
    assert_eq!(r.status(), 429);
    assert!(r.headers().get("retry-after").is_none());

    let r = send().await.expect("req");
    assert_eq!(r.status(), 422);
    assert_eq!(r.headers()["x-custom"], "1");

    // Consumed: back to normal.
    assert_eq!(send().await.expect("req").status(), 200);
    let faults: Vec<bool> = fake.requests().iter().map(|r| r.fault.is_some()).collect();
    assert_eq!(faults, vec![true, true, true, true, true, false]);
}

#[tokio::test]
async fn fault_every_request_until_cleared() {
    let fake = FakeDevin::start().await;
    fake.inject(FaultAt::EveryRequest, Fault::status(503));
    fake.inject(FaultAt::Request(1), Fault::status(500));
    assert_eq!(get_raw(&fake, "").await.0, 503);
    assert_eq!(get_raw(&fake, "").await.0, 500, "specific fault wins");
    assert_eq!(get_raw(&fake, "").await.0, 503);
    // Faults come before authentication.
    let r = client().get(url(&fake)).send().await.expect("req");
    assert_eq!(r.status(), 503);
    fake.clear_faults();
    assert_eq!(get_raw(&fake, "").await.0, 200);
}

#[tokio::test]
async fn fault_reset_drops_the_connection() {
    let fake = FakeDevin::start().await;
    seed(&fake, 1);
    fake.inject(FaultAt::Request(1), Fault::Reset);
    let c = client();
    // A first request opens a pooled keep-alive connection; the reset hits the second one.
    assert_eq!(
        c.get(url(&fake))
            .bearer_auth(TOKEN)
            .send()
            .await
            .expect("req")
            .status(),
        200
    );
    let err = c
        .get(url(&fake))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect_err("reset must be an error");
    assert!(!err.is_timeout(), "{err:?}");
    assert!(err.status().is_none());
    // The next request works again.
    assert_eq!(
        c.get(url(&fake))
            .bearer_auth(TOKEN)
            .send()
            .await
            .expect("req")
            .status(),
        200
    );
    let reqs = fake.requests();
    assert_eq!(reqs.len(), 3);
    assert_eq!(reqs[1].status, 0);
    assert_eq!(reqs[1].fault, Some(Fault::Reset));
}

#[tokio::test]
async fn fault_reset_on_a_fresh_connection_and_on_every_request() {
    let fake = FakeDevin::start().await;
    fake.inject(FaultAt::Request(0), Fault::Reset);
    let err = client()
        .get(url(&fake))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect_err("reset");
    assert!(!err.is_timeout(), "{err:?}");
    fake.inject(FaultAt::EveryRequest, Fault::Reset);
    let c = client();
    for _ in 0..3 {
        assert!(c.get(url(&fake)).bearer_auth(TOKEN).send().await.is_err());
    }
    let reqs = fake.wait_until(|r| r.len() == 4, WAIT).await;
    assert!(reqs.iter().all(|r| r.status == 0));
    assert!(
        fake.try_wait_until(|r| r.len() > 4, Duration::from_millis(100))
            .await
            .is_err(),
        "a reset is not retried by reqwest"
    );
}

#[tokio::test]
async fn fault_stall() {
    let fake = FakeDevin::start().await;
    seed(&fake, 1);
    fake.inject(FaultAt::Request(0), Fault::Stall(Duration::from_secs(3)));
    let quick = reqwest::Client::builder()
        .timeout(Duration::from_millis(200))
        .build()
        .expect("client");
    let started = Instant::now();
    let err = quick
        .get(url(&fake))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect_err("stall must time out");
    assert!(err.is_timeout(), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(2));
    // The stalled request was recorded at arrival.
    assert_eq!(fake.request_count(), 1);

    // A short stall, then a normal answer.
    fake.inject(
        FaultAt::Request(0),
        Fault::Stall(Duration::from_millis(300)),
    );
    let started = Instant::now();
    let (status, page) = get_json(&fake, "").await;
    assert_eq!(status, 200);
    assert_eq!(ids(&page), vec!["s0"]);
    assert!(started.elapsed() >= Duration::from_millis(300));
}

#[tokio::test]
async fn fault_truncated_wrong_shape_huge() {
    let fake = FakeDevin::start().await;
    seed(&fake, 3);
    let (_, full) = get_raw(&fake, "").await;

    fake.inject(FaultAt::Request(0), Fault::Truncated);
    let r = client()
        .get(url(&fake))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .expect("ct")
        .contains("application/json"));
    let err = r
        .json::<Value>()
        .await
        .expect_err("truncated JSON must not parse");
    assert!(err.is_decode(), "{err:?}");

    fake.inject(FaultAt::Request(0), Fault::Truncated);
    let (status, body) = get_raw(&fake, "").await;
    assert_eq!(status, 200);
    assert_eq!(body.len(), full.len() / 2);
    assert!(full.starts_with(&body));

    fake.inject(FaultAt::Request(0), Fault::WrongShape);
    let (status, body) = get_json(&fake, "").await;
    assert_eq!((status, body), (200, json!({"data": []})));

    fake.inject(FaultAt::Request(0), Fault::HugePage { bytes: 3_000_000 });
    let (status, body) = get_raw(&fake, "").await;
    assert_eq!(status, 200);
    assert!(body.len() > 3_000_000);
    let page: Value = serde_json::from_str(&body).expect("still valid JSON");
    assert_eq!(ids(&page).len(), 3);
}

#[tokio::test]
async fn fault_page_targets_and_cursor_loops() {
    let fake = FakeDevin::start().await;
    seed(&fake, 5); // s4 s3 s2 s1 s0

    // Page(1): only the second page of a listing gets the fault.
    fake.inject(FaultAt::Page(1), Fault::status(500));
    let (_, p0) = get_json(&fake, "first=2").await;
    let c1 = p0["end_cursor"].as_str().expect("c1").to_string();
    assert_eq!(
        get_json(&fake, "first=2").await.0,
        200,
        "page 0 again: untouched"
    );
    assert_eq!(get_raw(&fake, &format!("first=2&after={c1}")).await.0, 500);
    let (status, p1) = get_json(&fake, &format!("first=2&after={c1}")).await;
    assert_eq!(status, 200);
    assert_eq!(ids(&p1), vec!["s2", "s1"]);

    // RepeatCursor on page 1: the end cursor is the one asked with.
    fake.inject(FaultAt::Page(1), Fault::RepeatCursor);
    let (_, looped) = get_json(&fake, &format!("first=2&after={c1}")).await;
    assert_eq!(looped["end_cursor"], c1.as_str());
    assert_eq!(looped["has_next_page"], true);
    assert_eq!(ids(&looped), vec!["s2", "s1"]);

    // RepeatCursor on page 0: the cursor leads back to page 0.
    fake.inject(FaultAt::Page(0), Fault::RepeatCursor);
    let (_, p) = get_json(&fake, "first=2").await;
    assert_eq!(p["has_next_page"], true);
    let back = p["end_cursor"].as_str().expect("cursor");
    let (_, again) = get_json(&fake, &format!("first=2&after={back}")).await;
    assert_eq!(ids(&again), vec!["s4", "s3"]);

    // DuplicateSession.
    fake.inject(FaultAt::Page(0), Fault::DuplicateSession);
    let (_, p) = get_json(&fake, "first=2").await;
    assert_eq!(ids(&p), vec!["s4", "s3", "s4"]);
}

#[tokio::test]
async fn fault_same_page_twice() {
    let fake = FakeDevin::start().await;
    seed(&fake, 5);
    fake.inject(FaultAt::Page(0), Fault::SamePageTwice);
    let (all, pages) = list_all(&fake, "first=2").await;
    assert_eq!(all, vec!["s4", "s3", "s4", "s3", "s2", "s1", "s0"]);
    let cursors: Vec<&str> = pages
        .iter()
        .filter_map(|p| p["end_cursor"].as_str())
        .collect();
    assert_eq!(cursors.len(), 3);
    assert_eq!(
        cursors.iter().collect::<HashSet<_>>().len(),
        3,
        "no cursor repeats"
    );

    // On the last page: it announces one more page, which repeats it, and then ends.
    fake.inject(FaultAt::Page(0), Fault::SamePageTwice);
    let (all, pages) = list_all(&fake, "first=10").await;
    assert_eq!(all.len(), 10);
    assert_eq!(pages.len(), 2);
    assert_eq!(pages[1]["end_cursor"], Value::Null);
}

#[tokio::test]
async fn page_faults_leave_errors_alone() {
    let fake = FakeDevin::start().await;
    seed(&fake, 2);
    fake.inject(FaultAt::Request(0), Fault::Truncated);
    let r = client().get(url(&fake)).send().await.expect("req");
    assert_eq!(r.status(), 401);
    assert!(r.json::<Value>().await.is_ok());
}

// ------------------------------------------------------------------------------------------
// Receiver

#[tokio::test]
async fn receiver_records_and_scripts_in_order() {
    let recv = Receiver::start().await;
    recv.script(vec![
        Reply::Status(500, "boom".into()),
        Reply::RetryAfter(429, "3".into()),
        Reply::Status(410, "gone".into()),
    ]);
    let c = client();
    let mut statuses = Vec::new();
    for i in 0..4 {
        let r = c
            .post(recv.url("/hooks/a"))
            .header("X-Team", "payments")
            .json(&json!({"n": i}))
            .send()
            .await
            .expect("post");
        statuses.push(r.status().as_u16());
        if i == 1 {
            assert_eq!(r.headers()["retry-after"], "3");
        }
        if i == 3 {
            assert_eq!(r.text().await.expect("text"), "ok");
        }
    }
    assert_eq!(statuses, vec![500, 429, 410, 200]);
    let recs = recv.wait_for(4, WAIT).await;
    assert_eq!(recs.len(), 4);
    for (i, r) in recs.iter().enumerate() {
        assert_eq!(r.seq, i);
        assert_eq!(r.method, "POST");
        assert_eq!(r.path, "/hooks/a");
        assert_eq!(r.json(), json!({"n": i}));
        assert_eq!(r.header("x-team"), Some("payments"));
        assert_eq!(r.header("Content-Type"), Some("application/json"));
        assert_eq!(r.headers["x-team"], "payments");
    }
    assert_eq!(recs[0].replied, Reply::Status(500, "boom".into()));
    assert_eq!(recs[1].replied, Reply::RetryAfter(429, "3".into()));
    assert_eq!(recs[3].replied, Reply::ok());
    assert!(!recs[0].was_accepted());
    assert!(recs[3].was_accepted());
    assert!(recs[3].at >= recs[0].at);

    recv.set_default(Reply::Status(503, "down".into()));
    let r = c
        .post(recv.url("other"))
        .body("x")
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 503);
    assert_eq!(recv.received()[4].path, "/other");
    assert_eq!(recv.count(), 5);
}

#[tokio::test]
async fn receiver_close_stall_and_wait_until() {
    let recv = Receiver::start().await;
    recv.script(vec![
        Reply::Close,
        Reply::Stall(Duration::from_secs(3)),
        Reply::Stall(Duration::from_millis(100)),
    ]);
    let quick = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .expect("client");
    let err = quick
        .post(recv.url("/h"))
        .body("1")
        .send()
        .await
        .expect_err("closed");
    assert!(!err.is_timeout(), "{err:?}");
    let err = quick
        .post(recv.url("/h"))
        .body("2")
        .send()
        .await
        .expect_err("stalled");
    assert!(err.is_timeout(), "{err:?}");
    let r = quick
        .post(recv.url("/h"))
        .body("3")
        .send()
        .await
        .expect("short stall");
    assert_eq!(r.status(), 200);
    let recs = recv
        .wait_until(|recs| recs.iter().any(|r| r.body == b"3"), WAIT)
        .await;
    assert_eq!(recs.len(), 3);
    assert_eq!(recs[0].replied, Reply::Close);
    assert_eq!(recs[0].body, b"1");
    assert!(matches!(recs[1].replied, Reply::Stall(_)));

    // Concurrent waiter is woken by a later request.
    let r2 = recv.clone();
    let waiter = tokio::spawn(async move { r2.wait_for(4, WAIT).await.len() });
    client()
        .post(recv.url("/h"))
        .body("4")
        .send()
        .await
        .expect("post");
    assert_eq!(waiter.await.expect("waiter"), 4);
    assert!(recv
        .try_wait_for(5, Duration::from_millis(50))
        .await
        .is_err());
}

#[tokio::test]
#[should_panic(expected = "received 0")]
async fn receiver_wait_for_panics_on_timeout() {
    let recv = Receiver::start().await;
    recv.wait_for(1, Duration::from_millis(50)).await;
}

#[tokio::test]
async fn closed_port_refuses() {
    let err = client()
        .post(format!("{}/hook", closed_port_url()))
        .body("x")
        .send()
        .await
        .expect_err("nothing listens");
    assert!(err.is_connect(), "{err:?}");
}

// ------------------------------------------------------------------------------------------
// Webhooks verifier

const VECTOR_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const VECTOR_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
const VECTOR_TS: &str = "1614265330";
const VECTOR_BODY: &[u8] = br#"{"test": 2432232314}"#;
const VECTOR_SIG: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

#[test]
fn verifier_passes_the_published_vector() {
    let h = SignatureHeaders {
        id: VECTOR_ID,
        timestamp: VECTOR_TS,
        signature: VECTOR_SIG,
    };
    assert_eq!(
        webhooks::sign(VECTOR_SECRET, VECTOR_ID, VECTOR_TS, VECTOR_BODY).as_deref(),
        Ok(VECTOR_SIG)
    );
    assert_eq!(webhooks::verify(VECTOR_SECRET, &h, VECTOR_BODY), Ok(()));
    // Any of several space-separated signatures may match.
    let multi = format!("v1,AAAA {VECTOR_SIG}");
    let h2 = SignatureHeaders {
        signature: &multi,
        ..h
    };
    assert_eq!(webhooks::verify(VECTOR_SECRET, &h2, VECTOR_BODY), Ok(()));
    // Freshness is checked against the given clock.
    assert!(webhooks::verify_fresh(VECTOR_SECRET, &h, VECTOR_BODY, 1614265330 + 60, 300).is_ok());
    assert!(webhooks::verify_fresh(VECTOR_SECRET, &h, VECTOR_BODY, 1614265330 + 600, 300).is_err());
}

#[test]
fn verifier_rejects_tampering() {
    let h = SignatureHeaders {
        id: VECTOR_ID,
        timestamp: VECTOR_TS,
        signature: VECTOR_SIG,
    };
    assert!(webhooks::verify(VECTOR_SECRET, &h, br#"{"test": 2432232315}"#).is_err());
    let other_id = SignatureHeaders {
        id: "msg_other",
        ..h
    };
    assert!(webhooks::verify(VECTOR_SECRET, &other_id, VECTOR_BODY).is_err());
    let other_ts = SignatureHeaders {
        timestamp: "1614265331",
        ..h
    };
    assert!(webhooks::verify(VECTOR_SECRET, &other_ts, VECTOR_BODY).is_err());
    assert!(webhooks::verify("whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", &h, VECTOR_BODY).is_err());
    let v2 = SignatureHeaders {
        signature: "v2,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
        ..h
    };
    let err = webhooks::verify(VECTOR_SECRET, &v2, VECTOR_BODY).expect_err("no v1");
    assert!(err.contains("no v1"), "{err}");
    assert!(webhooks::verify("whsec_!!!", &h, VECTOR_BODY).is_err());
}

#[tokio::test]
async fn verifier_on_a_received_delivery() {
    let recv = Receiver::start().await;
    let body = br#"{"type":"session.created"}"#.to_vec();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
        .to_string();
    let sig = webhooks::sign(VECTOR_SECRET, "msg_1", &now, &body).expect("sign");
    client()
        .post(recv.url("/hook"))
        .header("webhook-id", "msg_1")
        .header("webhook-timestamp", &now)
        .header("webhook-signature", &sig)
        .body(body.clone())
        .send()
        .await
        .expect("post");
    client()
        .post(recv.url("/hook"))
        .body(body)
        .send()
        .await
        .expect("post");
    let recs = recv.wait_for(2, WAIT).await;
    assert_eq!(webhooks::verify_received(VECTOR_SECRET, &recs[0]), Ok(()));
    let err = webhooks::verify_received(VECTOR_SECRET, &recs[1]).expect_err("unsigned");
    assert!(err.contains("webhook-id"), "{err}");
    let mut tampered = recs[0].clone();
    tampered.body.push(b' ');
    assert!(webhooks::verify_received(VECTOR_SECRET, &tampered).is_err());
}

/// The WebDriver client drives a real headless Chromium: a page whose button changes a text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webdriver_client_clicks_types_and_reads_in_headless_chromium() {
    use axum::response::Html;
    let page = Html(
        "<!doctype html><title>t</title><main id=m><input id=name aria-label=Name>\
         <button type=button onclick=\"document.getElementById('out').textContent = \
         'hello ' + document.getElementById('name').value\">Greet</button><p id=out>-</p></main>",
    );
    let router = axum::Router::new().route("/", axum::routing::get(move || async move { page }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, router).await });

    let browser = support::webdriver::Browser::start(800, 600).await;
    browser.goto(&format!("http://{addr}/")).await;
    let input = browser.find("#name", WAIT).await;
    browser.type_text(&input, "devin").await;
    let greet = browser.button("#m", "Greet", WAIT).await;
    browser.click(&greet).await;
    let out = browser.wait_for_text("#out", WAIT, |t| t != "-").await;
    assert_eq!(out, "hello devin");
    let png = browser.screenshot().await;
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    browser.quit().await;
}
