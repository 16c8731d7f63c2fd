//! A small W3C WebDriver client over reqwest, driving Debian's headless Chromium through
//! `chromedriver` (`apt-get install -y chromium chromium-driver`; `.ci/run` installs them).
//!
//! Only what the console's tests use: open a page, find elements by CSS or by their visible
//! text, click, type, read text, run a script, take a screenshot. Every wait is a poll until a
//! condition holds, with a deadline.

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine as _;
use serde_json::{json, Value};

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";

/// A running chromedriver with one headless Chromium session; both end when dropped.
pub struct Browser {
    http: reqwest::Client,
    /// `http://127.0.0.1:PORT/session/ID`
    session: String,
    driver: Child,
}

impl Drop for Browser {
    fn drop(&mut self) {
        // chromedriver runs in a process group of its own with the Chromium it started: the
        // whole group ends, even when a test panicked before `quit`.
        if let Ok(pid) = i32::try_from(self.driver.id()) {
            // SAFETY: kill(2) with a negative pid signals that process group; no memory is shared.
            unsafe {
                libc::kill(-pid, libc::SIGKILL);
            }
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// An element of the page, as the driver names it.
#[derive(Debug, Clone)]
pub struct Element(String);

impl Browser {
    /// Starts chromedriver and a headless Chromium of `width` x `height` pixels.
    pub async fn start(width: u32, height: u32) -> Browser {
        let port = {
            let probe = TcpListener::bind("127.0.0.1:0").expect("a free port");
            probe.local_addr().expect("its address").port()
        };
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("{CHROMEDRIVER}: {e} (apt-get install -y chromium chromium-driver)")
            });
        let http = reqwest::Client::new();
        let root = format!("http://127.0.0.1:{port}");
        let mut browser = Browser {
            session: String::new(),
            http,
            driver,
        };
        let ready = poll_until(Duration::from_secs(20), || async {
            let answer = browser
                .http
                .get(format!("{root}/status"))
                .send()
                .await
                .ok()?;
            let status: Value = answer.json().await.ok()?;
            status["value"]["ready"].as_bool().filter(|r| *r)
        })
        .await;
        assert!(ready.is_some(), "chromedriver did not start on port {port}");
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", format!("--window-size={width},{height}")]
            }
        }}});
        let created: Value = browser
            .http
            .post(format!("{root}/session"))
            .json(&capabilities)
            .send()
            .await
            .expect("POST /session")
            .json()
            .await
            .expect("a session");
        let id = created["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {created}"));
        browser.session = format!("{root}/session/{id}");
        browser
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self
            .http
            .request(method.clone(), format!("{}{path}", self.session));
        if let Some(body) = body {
            req = req.json(&body);
        }
        let answer: Value = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
            .json()
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        answer["value"].clone()
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    /// Opens `url`.
    pub async fn goto(&self, url: &str) {
        self.post("/url", json!({ "url": url })).await;
    }

    /// The page's current URL.
    pub async fn url(&self) -> String {
        let v = self.call(reqwest::Method::GET, "/url", None).await;
        v.as_str().unwrap_or_default().to_owned()
    }

    /// Every element `css` selects now (perhaps none).
    pub async fn all(&self, css: &str) -> Vec<Element> {
        self.find_all("css selector", css).await
    }

    async fn find_all(&self, using: &str, value: &str) -> Vec<Element> {
        let found = self
            .post("/elements", json!({ "using": using, "value": value }))
            .await;
        found
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e.as_object()?.values().next()?.as_str().map(str::to_owned))
            .map(Element)
            .collect()
    }

    /// The first element `css` selects, waiting up to `within` for one to appear.
    pub async fn find(&self, css: &str, within: Duration) -> Element {
        poll_until(within, || async { self.all(css).await.into_iter().next() })
            .await
            .unwrap_or_else(|| panic!("no element `{css}` within {within:?}"))
    }

    /// The first button (or link) whose visible text is `name`, inside the element `scope`
    /// selects, waiting up to `within`.
    pub async fn button(&self, scope: &str, name: &str, within: Duration) -> Element {
        let scope = self.find(scope, within).await;
        let xpath = format!(".//*[(self::button or self::a) and normalize-space(.)='{name}']");
        poll_until(within, || async {
            let found = self
                .post(
                    &format!("/element/{}/elements", scope.0),
                    json!({ "using": "xpath", "value": xpath }),
                )
                .await;
            let first = found.as_array()?.first()?.as_object()?.values().next()?;
            first.as_str().map(|id| Element(id.to_owned()))
        })
        .await
        .unwrap_or_else(|| panic!("no button `{name}` within {within:?}"))
    }

    /// Clicks `element`.
    pub async fn click(&self, element: &Element) {
        self.post(&format!("/element/{}/click", element.0), json!({}))
            .await;
    }

    /// Types `text` into `element`.
    pub async fn type_text(&self, element: &Element, text: &str) {
        self.post(
            &format!("/element/{}/value", element.0),
            json!({ "text": text }),
        )
        .await;
    }

    /// The rendered text of `element`.
    pub async fn text(&self, element: &Element) -> String {
        let v = self
            .call(
                reqwest::Method::GET,
                &format!("/element/{}/text", element.0),
                None,
            )
            .await;
        v.as_str().unwrap_or_default().to_owned()
    }

    /// Waits up to `within` until the text of what `css` selects satisfies `ok`; returns it.
    pub async fn wait_for_text(
        &self,
        css: &str,
        within: Duration,
        ok: impl Fn(&str) -> bool,
    ) -> String {
        let deadline = tokio::time::Instant::now() + within;
        let mut last = String::new();
        loop {
            if let Some(element) = self.all(css).await.into_iter().next() {
                last = self.text(&element).await;
                if ok(&last) {
                    return last;
                }
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "`{css}` never read as expected within {within:?}; last: {last:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Runs `script` in the page (synchronously) and returns its value.
    pub async fn script(&self, script: &str) -> Value {
        self.post("/execute/sync", json!({ "script": script, "args": [] }))
            .await
    }

    /// A PNG of the viewport.
    pub async fn screenshot(&self) -> Vec<u8> {
        let v = self.call(reqwest::Method::GET, "/screenshot", None).await;
        base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap_or_default())
            .expect("a base64 PNG")
    }

    /// Ends the browser session (the driver ends when dropped).
    pub async fn quit(self) {
        let _ = self.http.delete(&self.session).send().await;
    }
}

/// Calls `probe` every 50 ms until it returns `Some`, for at most `within`.
pub async fn poll_until<T, F, Fut>(within: Duration, mut probe: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if let Some(v) = probe().await {
            return Some(v);
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
