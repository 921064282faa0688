//! Timing the console in a real browser for `field bench console
//! --browser`: headless Chromium through chromedriver, spoken to over
//! WebDriver's JSON-over-HTTP with the HTTP client we already have.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

/// A chromedriver and one browser session, ended on drop.
pub struct Browser {
    driver: Child,
    http: reqwest::blocking::Client,
    session: String,
    _profile: tempfile::TempDir,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.http.delete(&self.session).send();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Browser {
    /// Starts chromedriver on a free loopback port and a headless Chromium.
    pub fn start() -> Result<Browser> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let mut driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("chromedriver (apt-get install chromium chromium-driver)")?;
        let mut lines = BufReader::new(driver.stdout.take().context("stdout")?).lines();
        loop {
            match lines.next() {
                Some(Ok(l)) if l.contains("started successfully") => break,
                Some(Ok(_)) => {}
                _ => bail!("chromedriver stopped before listening"),
            }
        }
        std::thread::spawn(move || for _ in lines {});
        let profile = tempfile::tempdir()?;
        field_core::sync::http::tls_ready();
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(120))
            .build()?;
        let caps = json!({ "capabilities": { "alwaysMatch": { "goog:chromeOptions": {
            "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--disable-background-networking", "--disable-component-update",
                     "--no-first-run", "--disable-sync", "--window-size=1280,1200",
                     format!("--user-data-dir={}", profile.path().display())],
        } } } });
        let base = format!("http://127.0.0.1:{port}/session");
        let r: Value = http.post(&base).json(&caps).send()?.json()?;
        let id = r["value"]["sessionId"]
            .as_str()
            .with_context(|| format!("no WebDriver session: {r}"))?;
        Ok(Browser {
            driver,
            http,
            session: format!("{base}/{id}"),
            _profile: profile,
        })
    }

    fn call(&self, path: &str, body: Value) -> Result<Value> {
        let r: Value = self
            .http
            .post(format!("{}/{path}", self.session))
            .json(&body)
            .send()?
            .json()?;
        if r["value"]["error"].is_string() {
            bail!("WebDriver {path}: {}", r["value"]["message"]);
        }
        Ok(r["value"].clone())
    }

    pub fn goto(&self, url: &str) -> Result<()> {
        self.call("url", json!({ "url": url }))?;
        Ok(())
    }

    pub fn add_cookie(&self, name: &str, value: &str) -> Result<()> {
        self.call(
            "cookie",
            json!({ "cookie": { "name": name, "value": value, "path": "/console" } }),
        )?;
        Ok(())
    }

    pub fn eval(&self, script: &str) -> Result<Value> {
        self.call("execute/sync", json!({ "script": script, "args": [] }))
    }

    /// Polls `script` until it returns a non-null value (60 s at most).
    pub fn until(&self, script: &str) -> Result<Value> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let v = self.eval(script)?;
            if !v.is_null() && v != Value::Bool(false) {
                return Ok(v);
            }
            if Instant::now() > deadline {
                bail!("timed out waiting for {script}");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}
