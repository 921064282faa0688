//! Signing in with a reviewer's token, and out.

use axum::Form;
use axum::extract::{Query, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;

use super::layout::{error_page_in, page, role_name, t, tr};
use super::session::{self, Staff};
use crate::http::AppState;
use crate::http::routes::blocking;
use field_i18n::Lang;

pub async fn home() -> Redirect {
    Redirect::to("/console/queue")
}

#[derive(Deserialize, Default)]
pub struct Next {
    #[serde(default)]
    next: String,
}

pub async fn sign_in_form(
    headers: axum::http::HeaderMap,
    query: Result<Query<Next>, axum::extract::rejection::QueryRejection>,
) -> Markup {
    let next = query.map(|Query(n)| n.next).unwrap_or_default();
    sign_in_page(session::request_lang(&headers), None, &next)
}

fn sign_in_page(l: Lang, error: Option<&str>, next: &str) -> Markup {
    let next = session::console_path(next).unwrap_or("/console/queue");
    page(
        l,
        &t(l, "sign-in-title"),
        None,
        html! {
            @if let Some(e) = error { p.error { (e) } }
            form method="post" action="/console/sign-in" {
                input type="hidden" name="next" value=(next);
                label { (t(l, "sign-in-token")) " " input type="password" name="token" autocomplete="off" required; }
                " "
                button type="submit" { (t(l, "sign-in-submit")) }
            }
        },
    )
}

#[derive(Deserialize, Default)]
pub struct LangChoice {
    #[serde(default)]
    to: String,
    #[serde(default)]
    next: String,
}

/// Switches the console's language and goes back to the page: the choice
/// is remembered in the browser (a year) and wins over `Accept-Language`.
pub async fn choose_lang(
    query: Result<Query<LangChoice>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let q = query.map(|Query(q)| q).unwrap_or_default();
    let back = session::console_path(&q.next).unwrap_or("/console/queue");
    match Lang::parse(&q.to) {
        Some(lang) => (
            [(header::SET_COOKIE, session::lang_cookie(lang))],
            Redirect::to(back),
        )
            .into_response(),
        None => Redirect::to(back).into_response(),
    }
}

#[derive(Deserialize)]
pub struct SignIn {
    token: String,
    /// The console page to land on.
    #[serde(default)]
    next: String,
}

pub async fn sign_in(State(s): State<AppState>, parts: Parts, Form(f): Form<SignIn>) -> Response {
    let l = session::request_lang(&parts.headers);
    if session::cross_site(&parts) {
        return error_page_in(l, None, StatusCode::FORBIDDEN, &t(l, "err-cross-site"));
    }
    let center = s.center.clone();
    let token = f.token.trim().to_string();
    let bearer = token.clone();
    let who = blocking(move || center.authenticate(Some(&bearer))).await;
    match who {
        Ok(p) if p.user.role.is_staff() => {
            let center = s.center.clone();
            let id = match blocking(move || center.open_console_session(&token)).await {
                Ok(id) => id,
                Err(e) => return e.into_response(),
            };
            (
                [(header::SET_COOKIE, session::cookie(Some(&id), &parts))],
                Redirect::to(session::console_path(&f.next).unwrap_or("/console/queue")),
            )
                .into_response()
        }
        Ok(p) => (
            StatusCode::FORBIDDEN,
            sign_in_page(
                l,
                Some(&tr(
                    l,
                    "err-not-staff",
                    &[
                        ("name", p.user.name.clone().into()),
                        ("role", role_name(l, p.user.role).into()),
                    ],
                )),
                &f.next,
            ),
        )
            .into_response(),
        Err(_) => (
            StatusCode::UNAUTHORIZED,
            sign_in_page(l, Some(&t(l, "err-bad-token")), &f.next),
        )
            .into_response(),
    }
}

#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

pub async fn sign_out(
    State(s): State<AppState>,
    staff: Staff,
    parts: Parts,
    Form(f): Form<CsrfForm>,
) -> Response {
    if session::cross_site(&parts) || !staff.check_csrf(&f.csrf) {
        return error_page_in(
            staff.lang,
            Some(&staff),
            StatusCode::FORBIDDEN,
            &t(staff.lang, "err-cross-site"),
        );
    }
    let center = s.center.clone();
    let id = staff.session.clone();
    if let Err(e) = blocking(move || center.close_console_session(&id)).await {
        return e.into_response();
    }
    (
        [(header::SET_COOKIE, session::cookie(None, &parts))],
        Redirect::to("/console/sign-in"),
    )
        .into_response()
}
