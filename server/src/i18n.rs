//! The workspace in Kazakh, Russian and English: every text of every page
//! comes from `server/locales/*.ftl` through the core's Fluent
//! [`Catalog`]. A coordinator's language is kept with their account;
//! before sign-in it is the browser's (`Accept-Language`) or the one
//! picked on the sign-in page.

use std::sync::OnceLock;

use observer_core::i18n::{Catalog, base_language};
use serde::Serialize;

const LOCALES: &[(&str, &str)] = &[
    ("en", include_str!("../locales/en.ftl")),
    ("ru", include_str!("../locales/ru.ftl")),
    ("kk", include_str!("../locales/kk.ftl")),
];

fn catalog() -> &'static Catalog {
    static CATALOG: OnceLock<Catalog> = OnceLock::new();
    CATALOG.get_or_init(|| Catalog::new(LOCALES))
}

/// A language the workspace is written in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    #[default]
    En,
    Ru,
    Kk,
}

impl Lang {
    pub const ALL: [Lang; 3] = [Lang::Kk, Lang::Ru, Lang::En];

    /// Its tag, as stored and as in `<html lang>`.
    pub fn tag(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Ru => "ru",
            Lang::Kk => "kk",
        }
    }

    /// Its name in itself, for the language picker.
    pub fn own_name(self) -> &'static str {
        match self {
            Lang::En => "English",
            Lang::Ru => "Русский",
            Lang::Kk => "Қазақша",
        }
    }

    /// The shipped language of `tag` (`ru-KZ` is Russian), if any.
    pub fn parse(tag: &str) -> Option<Lang> {
        let base = base_language(tag.trim()).to_ascii_lowercase();
        Lang::ALL.into_iter().find(|l| l.tag() == base)
    }

    /// The first shipped language an `Accept-Language` header asks for,
    /// in its order of preference; English otherwise.
    pub fn from_accept_language(header: &str) -> Lang {
        let mut asked: Vec<(f32, usize, Lang)> = header
            .split(',')
            .enumerate()
            .filter_map(|(i, part)| {
                let mut bits = part.split(';');
                let lang = Lang::parse(bits.next()?)?;
                let q = bits
                    .find_map(|b| b.trim().strip_prefix("q="))
                    .and_then(|q| q.parse::<f32>().ok())
                    .unwrap_or(1.0);
                (q > 0.0).then_some((q, i, lang))
            })
            .collect();
        asked.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        asked.first().map_or(Lang::En, |a| a.2)
    }
}

tokio::task_local! {
    /// The language of the request being answered (set by the HTTP
    /// layer's middleware from the reader's choice or their browser's).
    static LANG: Lang;
}

tokio::task_local! {
    /// The coordination centre's time zone, for the request being answered
    /// (the day's plan names it; UTC until it does).
    static ZONE: chrono_tz::Tz;
}

/// The current request's language (English outside a request).
pub fn current() -> Lang {
    LANG.try_with(|l| *l).unwrap_or_default()
}

/// The current request's time zone (UTC outside a request).
pub fn zone() -> chrono_tz::Tz {
    ZONE.try_with(|z| *z).unwrap_or(chrono_tz::UTC)
}

/// Runs `f` answering in `lang`, with times in `zone`.
pub async fn scope<F: std::future::Future>(lang: Lang, zone: chrono_tz::Tz, f: F) -> F::Output {
    LANG.scope(lang, ZONE.scope(zone, f)).await
}

/// Runs the blocking `f` (on a thread of its own) answering in `lang`,
/// with times in `zone`: what a page computes off the async threads reads
/// the same language and zone as the request it is for.
pub fn sync_scope<R>(lang: Lang, zone: chrono_tz::Tz, f: impl FnOnce() -> R) -> R {
    LANG.sync_scope(lang, || ZONE.sync_scope(zone, f))
}

/// A time as coordinators read it: in the centre's time zone, with the
/// zone's abbreviation or offset, or "never".
pub fn time(ms: Option<i64>) -> String {
    ms.and_then(|ms| time_in(zone(), ms))
        .unwrap_or_else(|| "never".into())
}

/// `ms` since the epoch in `zone`, with the zone's abbreviation or offset.
fn time_in(zone: chrono_tz::Tz, ms: i64) -> Option<String> {
    chrono::DateTime::from_timestamp_millis(ms).map(|t| {
        t.with_timezone(&zone)
            .format("%Y-%m-%d %H:%M:%S %Z")
            .to_string()
    })
}

/// What a template asks for its texts.
#[derive(Clone, Copy, Debug)]
pub struct Texts {
    pub lang: Lang,
    /// Where times are shown.
    pub zone: chrono_tz::Tz,
}

impl Texts {
    pub fn new(lang: Lang) -> Self {
        Self {
            lang,
            zone: chrono_tz::UTC,
        }
    }

    /// The current request's.
    pub fn current() -> Self {
        Self {
            lang: current(),
            zone: zone(),
        }
    }

    /// The time zone's name, as the deadlines' labels show it.
    pub fn zone_name(&self) -> &'static str {
        self.zone.name()
    }

    /// Every language, for the picker: (tag, own name, is this one).
    pub fn languages(&self) -> Vec<(&'static str, &'static str, bool)> {
        Lang::ALL
            .into_iter()
            .map(|l| (l.tag(), l.own_name(), l == self.lang))
            .collect()
    }

    /// Message `id`.
    pub fn get(&self, id: &str) -> String {
        catalog().text(self.lang.tag(), id, &[])
    }

    /// The text of `prefix-name`: a state's, a phase's or a priority's name.
    pub fn named(&self, prefix: &str, name: &str) -> String {
        self.get(&format!("{prefix}-{name}"))
    }

    /// A time as the workspace shows it, in the centre's time zone.
    pub fn time(&self, ms: &i64) -> String {
        time_in(self.zone, *ms).unwrap_or_default()
    }

    /// A time as the workspace shows it, or "never" in this language.
    pub fn time_or_never(&self, ms: &Option<i64>) -> String {
        match ms {
            Some(ms) => self.time(ms),
            None => self.get("never"),
        }
    }

    /// Message `id` with one argument.
    pub fn arg(&self, id: &str, name: &str, value: impl ToString) -> String {
        catalog().text(self.lang.tag(), id, &[(name, value.to_string())])
    }

    /// Message `id` with two arguments.
    pub fn arg2(
        &self,
        id: &str,
        n1: &str,
        v1: impl ToString,
        n2: &str,
        v2: impl ToString,
    ) -> String {
        self.args(id, &[(n1, v1.to_string()), (n2, v2.to_string())])
    }

    /// Message `id` with four arguments.
    #[allow(clippy::too_many_arguments)] // a template's call, names beside values
    pub fn args4(
        &self,
        id: &str,
        n1: &str,
        v1: impl ToString,
        n2: &str,
        v2: impl ToString,
        n3: &str,
        v3: impl ToString,
        n4: &str,
        v4: impl ToString,
    ) -> String {
        self.args(
            id,
            &[
                (n1, v1.to_string()),
                (n2, v2.to_string()),
                (n3, v3.to_string()),
                (n4, v4.to_string()),
            ],
        )
    }

    /// Message `id` with its arguments.
    pub fn args(&self, id: &str, args: &[(&str, String)]) -> String {
        catalog().text(self.lang.tag(), id, args)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every id the English catalogue has, in every language: a page is
    /// never half translated.
    #[test]
    fn every_language_has_every_message() {
        let ids: Vec<&str> = LOCALES[0]
            .1
            .lines()
            .filter_map(|l| l.split_once(" =").map(|(id, _)| id.trim()))
            .filter(|id| !id.is_empty() && !id.starts_with('#') && !id.contains(' '))
            .collect();
        assert!(ids.len() > 40, "{}", ids.len());
        for lang in Lang::ALL {
            for id in &ids {
                assert!(catalog().has(lang.tag(), id), "{} lacks {id}", lang.tag());
            }
        }
        let (en, ru, kk) = (
            Texts::new(Lang::En),
            Texts::new(Lang::Ru),
            Texts::new(Lang::Kk),
        );
        assert_ne!(en.get("sign-in"), ru.get("sign-in"));
        assert_ne!(ru.get("sign-in"), kk.get("sign-in"));
        assert!(
            kk.arg("forbidden-roles", "roles", "admin")
                .contains("admin")
        );
    }

    /// The SMS log's outcomes are named by code: each has its name.
    #[test]
    fn every_sms_outcome_has_a_name_in_every_language() {
        for lang in Lang::ALL {
            for o in crate::sms::OUTCOMES {
                let id = format!("sms-outcome-{o}");
                assert!(catalog().has(lang.tag(), &id), "{} lacks {id}", lang.tag());
            }
        }
    }

    #[test]
    fn the_browsers_preference_picks_the_language() {
        assert_eq!(
            Lang::from_accept_language("ru-RU,ru;q=0.9,en;q=0.8"),
            Lang::Ru
        );
        assert_eq!(
            Lang::from_accept_language("de, kk;q=0.5, ru;q=0.4"),
            Lang::Kk
        );
        assert_eq!(Lang::from_accept_language("en;q=0.1, kk-KZ"), Lang::Kk);
        assert_eq!(Lang::from_accept_language("fr"), Lang::En);
        assert_eq!(Lang::from_accept_language(""), Lang::En);
        assert_eq!(Lang::parse("KK"), Some(Lang::Kk));
    }
}
