//! Where a console request is authenticated: a signed-in reviewer holds an
//! HttpOnly, SameSite=Strict session cookie; every form that changes state
//! carries the session's CSRF token, and a cross-site `Origin` is refused.
//! Sessions live in the database (`service/sessions.rs`): any instance
//! serves them, a restart keeps them.
//! The session keeps the bearer token it was opened with, so a revoked
//! token ends its sessions at the next request.

use axum::extract::FromRequestParts;
use axum::http::header::{COOKIE, ORIGIN};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Redirect, Response};

use crate::http::AppState;
use crate::http::routes::blocking;
use crate::service::SESSION_LIFETIME_MS;
use crate::storage::Principal;

pub const COOKIE_NAME: &str = "fc_session";
/// The language a person chose in the console (kept a year).
pub const LANG_COOKIE: &str = "fc_lang";

/// The language of a console request: the person's remembered choice, else
/// what their browser asks for (`Accept-Language`), else Chinese.
pub fn request_lang(headers: &axum::http::HeaderMap) -> field_i18n::Lang {
    cookie_value(headers, LANG_COOKIE)
        .and_then(|v| field_i18n::Lang::parse(&v))
        .unwrap_or_else(|| crate::http::accepted_lang(headers))
}

/// The `Set-Cookie` value remembering a language choice.
pub fn lang_cookie(lang: field_i18n::Lang) -> String {
    format!(
        "{LANG_COOKIE}={}; Path=/console; SameSite=Lax; Max-Age=31536000",
        lang.tag()
    )
}

/// The `Set-Cookie` value that opens (or, with `None`, clears) a session;
/// `Secure` whenever the console was reached over HTTPS.
pub fn cookie(id: Option<&str>, parts: &Parts) -> String {
    let secure = if frontend(parts).https {
        "; Secure"
    } else {
        ""
    };
    match id {
        Some(id) => format!(
            "{COOKIE_NAME}={id}; Path=/console; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
            SESSION_LIFETIME_MS / 1000
        ),
        None => {
            format!("{COOKIE_NAME}=; Path=/console; HttpOnly; SameSite=Strict; Max-Age=0{secure}")
        }
    }
}

/// How the request reached us (set by the observing middleware; a router
/// driven without it sees plain HTTP and the `Host` header).
fn frontend(parts: &Parts) -> crate::http::frontend::Frontend {
    parts
        .extensions
        .get::<crate::http::frontend::Frontend>()
        .cloned()
        .unwrap_or_else(|| {
            crate::http::frontend::FrontDoor::default().frontend(None, &parts.headers)
        })
}

fn session_id(parts: &Parts) -> Option<String> {
    cookie_value(&parts.headers, COOKIE_NAME)
}

fn cookie_value(headers: &axum::http::HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// A signed-in member of the center's staff.
pub struct Staff {
    pub principal: Principal,
    pub session: String,
    pub csrf: String,
    /// The language the pages are written in for this person.
    pub lang: field_i18n::Lang,
    /// The page asked for, to come back to after switching language.
    pub here: String,
}

impl Staff {
    /// Refuses a state-changing request whose form token is not this
    /// session's.
    pub fn check_csrf(&self, sent: &str) -> bool {
        !sent.is_empty() && constant_time_eq(sent.as_bytes(), self.csrf.as_bytes())
    }
}

/// Compares secrets in time independent of where they differ.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A request from another site (its `Origin` names a host other than
/// ours) is refused outright, before any session is looked at.
pub fn cross_site(parts: &Parts) -> bool {
    let Some(origin) = parts.headers.get(ORIGIN).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    // Our host as the browser knows it: behind a proxy that rewrites
    // `Host`, the forwarded host or the configured public URL's.
    let host = frontend(parts).host;
    let origin_host = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"));
    origin_host != host.as_deref()
}

/// `path` when it is a console page of this server (a redirect target that
/// cannot leave the console: no scheme, no `//` host, no backslash).
/// `path` when it is a console page safe to redirect to: ours, no other
/// host, and nothing that cannot go in a `Location` header (a CR/LF there
/// would fail the response after the session cookie was made).
pub fn console_path(path: &str) -> Option<&str> {
    (path.starts_with("/console/")
        && !path.contains("//")
        && !path.contains('\\')
        && path.len() <= 2048
        && path.bytes().all(|b| b.is_ascii_graphic()))
    .then_some(path)
}

impl FromRequestParts<AppState> for Staff {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Staff, Response> {
        // Back to the page asked for once signed in (pages only: not a
        // form post, not the map's data).
        let next = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .filter(|p| {
                parts.method == axum::http::Method::GET
                    && !p.starts_with("/console/map/data")
                    && !p.starts_with("/console/dashboard/data")
            })
            .and_then(|p| console_path(&p).map(String::from));
        // The map's data is fetched by script: it gets a plain 401 to show,
        // not a sign-in page it cannot read.
        let data = parts.uri.path().starts_with("/console/map/data")
            || parts.uri.path() == "/console/dashboard/data";
        let to_sign_in = || match &next {
            _ if data => (
                axum::http::StatusCode::UNAUTHORIZED,
                axum::Json(
                    serde_json::json!({ "reason": "signed out: reload the page to sign in" }),
                ),
            )
                .into_response(),
            Some(n) => Redirect::to(&format!(
                "/console/sign-in?{}",
                form_urlencoded::Serializer::new(String::new())
                    .append_pair("next", n)
                    .finish()
            ))
            .into_response(),
            None => Redirect::to("/console/sign-in").into_response(),
        };
        let id = session_id(parts).ok_or_else(to_sign_in)?;
        let center = state.center.clone();
        let session = id.clone();
        let open = blocking(move || center.console_session(&session))
            .await
            .ok()
            .flatten();
        match open {
            Some(open) => {
                crate::http::observe::principal(&open.principal.label());
                Ok(Staff {
                    principal: open.principal,
                    session: id,
                    csrf: open.csrf,
                    lang: request_lang(&parts.headers),
                    here: next.unwrap_or_else(|| "/console/queue".into()),
                })
            }
            None => Err(to_sign_in()),
        }
    }
}
