//! The product's words in the languages its people read: Simplified Chinese
//! first, English kept. The words live in Fluent message files under
//! `locales/<lang>/` that a translator edits without touching code; this
//! crate picks the language a person asked for (a browser's
//! `Accept-Language`, a remembered choice, `--lang` / `FIELD_LANG`) and
//! writes numbers, dates and times the way that locale reads them, on the
//! city's wall clock.

use std::borrow::Cow;
use std::collections::HashMap;

use chrono_tz::Tz;
pub use fluent_templates::fluent_bundle::FluentValue;
use fluent_templates::{Loader, static_loader};
use unic_langid::{LanguageIdentifier, langid};

static_loader! {
    static LOCALES = {
        locales: "./locales",
        fallback_language: "zh-CN",
        // Plain text: the console escapes what it prints, and a terminal
        // shows the isolation marks Fluent would put around arguments.
        customise: |bundle| bundle.set_use_isolating(false),
    };
}

static ZH: LanguageIdentifier = langid!("zh-CN");
static EN: LanguageIdentifier = langid!("en");

/// A language the product speaks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Lang {
    /// Simplified Chinese, the default.
    #[default]
    Zh,
    En,
}

/// Every language, the default first.
pub const LANGS: [Lang; 2] = [Lang::Zh, Lang::En];

impl Lang {
    /// A BCP 47 tag or a common spelling of one (`zh`, `zh-CN`, `zh_CN.UTF-8`,
    /// `en`, `en-US`); `None` for a language the product does not speak.
    pub fn parse(tag: &str) -> Option<Lang> {
        let primary = tag
            .trim()
            .split(['-', '_', '.'])
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        match primary.as_str() {
            "zh" => Some(Lang::Zh),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    /// The language a browser prefers among those the product speaks
    /// (`Accept-Language`, weighted by `q`); Chinese when none is spoken.
    /// A hostile header costs at most its first 32 entries.
    pub fn negotiate(accept_language: &str) -> Lang {
        let mut best: Option<(f32, usize, Lang)> = None;
        for (i, entry) in accept_language.split(',').take(32).enumerate() {
            let mut parts = entry.split(';');
            let tag = parts.next().unwrap_or_default();
            let q = parts
                .find_map(|p| p.trim().strip_prefix("q="))
                .and_then(|q| q.trim().parse::<f32>().ok())
                .filter(|q| q.is_finite())
                .unwrap_or(1.0);
            let Some(lang) = Lang::parse(tag) else {
                continue;
            };
            // Highest weight wins; among equals, the one listed first.
            if q > 0.0 && best.is_none_or(|(bq, bi, _)| q > bq || (q == bq && i < bi)) {
                best = Some((q, i, lang));
            }
        }
        best.map(|(_, _, l)| l).unwrap_or_default()
    }

    /// The tag a page declares (`<html lang>`) and a choice is stored as.
    pub fn tag(self) -> &'static str {
        match self {
            Lang::Zh => "zh-CN",
            Lang::En => "en",
        }
    }

    /// The language's own name, for a switcher.
    pub fn own_name(self) -> &'static str {
        match self {
            Lang::Zh => "中文",
            Lang::En => "English",
        }
    }

    fn id(self) -> &'static LanguageIdentifier {
        match self {
            Lang::Zh => &ZH,
            Lang::En => &EN,
        }
    }

    /// The message `key` in this language (the key itself when no file
    /// has it: the parity test keeps that from shipping).
    pub fn t(self, key: &str) -> String {
        LOCALES
            .try_lookup(self.id(), key)
            .unwrap_or_else(|| key.to_string())
    }

    /// The message `key` with its arguments filled in.
    pub fn tr(self, key: &str, args: &[(&'static str, FluentValue<'static>)]) -> String {
        let args: HashMap<Cow<'static, str>, FluentValue> = args
            .iter()
            .map(|(k, v)| (Cow::Borrowed(*k), v.clone()))
            .collect();
        LOCALES
            .try_lookup_with_args(self.id(), key, &args)
            .unwrap_or_else(|| key.to_string())
    }

    /// A count or an amount with grouped thousands (`12,345.6`), as both
    /// locales write them, to `decimals` places.
    pub fn number(self, value: f64, decimals: usize) -> String {
        if !value.is_finite() {
            return "—".into();
        }
        let text = format!("{:.*}", decimals, value.abs());
        let (int, frac) = text.split_once('.').unwrap_or((&text, ""));
        let mut grouped = String::new();
        for (i, c) in int.chars().enumerate() {
            if i > 0 && (int.len() - i) % 3 == 0 {
                grouped.push(',');
            }
            grouped.push(c);
        }
        let sign = if value < 0.0 && text.chars().any(|c| c.is_ascii_digit() && c != '0') {
            "-"
        } else {
            ""
        };
        if frac.is_empty() {
            format!("{sign}{grouped}")
        } else {
            format!("{sign}{grouped}.{frac}")
        }
    }

    /// A rate (0.853) as a percentage to one place (`85.3%`).
    pub fn percent(self, ratio: f64) -> String {
        format!("{}%", self.number(ratio * 100.0, 1))
    }

    /// A calendar day as the locale writes it: `2026年3月2日`, `2026-03-02`.
    pub fn date(self, day: chrono::NaiveDate) -> String {
        match self {
            Lang::Zh => day.format("%Y年%-m月%-d日").to_string(),
            Lang::En => day.format("%Y-%m-%d").to_string(),
        }
    }

    /// An instant on the city's wall clock, to the second:
    /// `2026年3月2日 08:30:00`, `2026-03-02 08:30:00`.
    pub fn date_time(self, ms: i64, tz: Tz) -> String {
        chrono::DateTime::from_timestamp_millis(ms)
            .map(|t| {
                let local = t.with_timezone(&tz);
                format!(
                    "{} {}",
                    self.date(local.date_naive()),
                    local.format("%H:%M:%S")
                )
            })
            .unwrap_or_default()
    }

    /// The time of day on the city's wall clock (`08:30`).
    pub fn clock(self, ms: i64, tz: Tz) -> String {
        chrono::DateTime::from_timestamp_millis(ms)
            .map(|t| t.with_timezone(&tz).format("%H:%M").to_string())
            .unwrap_or_default()
    }
}

impl std::fmt::Display for Lang {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.tag())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_browser_gets_the_language_it_weighs_highest() {
        assert_eq!(Lang::negotiate("en-US,en;q=0.9,zh-CN;q=0.8"), Lang::En);
        assert_eq!(Lang::negotiate("zh-CN,zh;q=0.9,en;q=0.8"), Lang::Zh);
        assert_eq!(Lang::negotiate("fr-FR, en;q=0.5, zh;q=0.7"), Lang::Zh);
        assert_eq!(Lang::negotiate("de, fr"), Lang::Zh);
        assert_eq!(Lang::negotiate(""), Lang::Zh);
        assert_eq!(Lang::negotiate("en;q=0, zh;q=0.1"), Lang::Zh);
        assert_eq!(Lang::negotiate("en;q=abc"), Lang::En);
        assert_eq!(Lang::parse("zh_CN.UTF-8"), Some(Lang::Zh));
        assert_eq!(Lang::parse("ja"), None);
    }

    #[test]
    fn numbers_and_times_read_as_the_locale_writes_them() {
        assert_eq!(Lang::Zh.number(1234567.891, 1), "1,234,567.9");
        assert_eq!(Lang::En.number(-1234.0, 0), "-1,234");
        assert_eq!(Lang::En.number(-0.01, 1), "0.0");
        assert_eq!(Lang::Zh.number(999.0, 0), "999");
        assert_eq!(Lang::Zh.percent(0.8534), "85.3%");
        let ms = 1_772_411_400_000; // 2026-03-02T00:30:00Z
        let tz = chrono_tz::Asia::Shanghai;
        assert_eq!(Lang::Zh.date_time(ms, tz), "2026年3月2日 08:30:00");
        assert_eq!(Lang::En.date_time(ms, tz), "2026-03-02 08:30:00");
        assert_eq!(Lang::Zh.clock(ms, tz), "08:30");
    }

    #[test]
    fn messages_take_their_arguments_without_isolation_marks() {
        let text = Lang::En.tr(
            "queue-total",
            &[("count", 3.into()), ("page", 1.into()), ("pages", 2.into())],
        );
        assert!(text.starts_with("3 cases"), "{text}");
        let one = Lang::En.tr(
            "queue-total",
            &[("count", 1.into()), ("page", 1.into()), ("pages", 1.into())],
        );
        assert!(one.starts_with("1 case ·"), "{one}");
        assert!(text.contains('3') && !text.contains('\u{2068}'), "{text}");
        assert_ne!(Lang::Zh.t("nav-queue"), Lang::En.t("nav-queue"));
        assert_eq!(Lang::Zh.t("no-such-key"), "no-such-key");
    }
}
