//! Validation messages in the observer's language (Kazakh, Russian,
//! English), from Fluent files in `core/locales/`: translators edit those,
//! not Rust. A language without a message falls back to English.

use std::sync::OnceLock;

use crate::i18n::Catalog;

/// The languages shipped, with their Fluent sources.
const LOCALES: &[(&str, &str)] = &[
    ("en", include_str!("../../locales/en.ftl")),
    ("ru", include_str!("../../locales/ru.ftl")),
    ("kk", include_str!("../../locales/kk.ftl")),
];

/// A message and its arguments, rendered in a language by [`Message::render`].
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Message {
    Required,
    ExpectedYesNo,
    ExpectedWholeNumber,
    ExpectedNumber,
    ExpectedText,
    ExpectedOneOption,
    ExpectedOptions,
    OutOfRange {
        value: String,
        min: String,
        max: String,
    },
    TooLong {
        max: usize,
    },
    NotAnOption {
        value: String,
    },
    NotAnOptionOrTwice {
        value: String,
    },
    ExpectedTime,
    ExpectedDate,
    ExpectedDateTime,
    ExpectedAcknowledge,
    TakesNoAnswer,
    Miscalculated {
        value: String,
        expected: String,
    },
    ExpectedMedia,
    HiddenAnswered,
    UnknownField {
        key: String,
        form: String,
        version: u32,
    },
}

fn catalog() -> &'static Catalog {
    static CATALOG: OnceLock<Catalog> = OnceLock::new();
    CATALOG.get_or_init(|| Catalog::new(LOCALES))
}

impl Message {
    fn id_and_args(&self) -> (&'static str, Vec<(&'static str, String)>) {
        let mut args = Vec::new();
        let id = match self {
            Message::Required => "required",
            Message::ExpectedYesNo => "expected-yes-no",
            Message::ExpectedWholeNumber => "expected-whole-number",
            Message::ExpectedNumber => "expected-number",
            Message::ExpectedText => "expected-text",
            Message::ExpectedOneOption => "expected-one-option",
            Message::ExpectedOptions => "expected-options",
            Message::OutOfRange { value, min, max } => {
                args.push(("value", value.clone()));
                args.push(("min", min.clone()));
                args.push(("max", max.clone()));
                "out-of-range"
            }
            Message::TooLong { max } => {
                args.push(("max", max.to_string()));
                "too-long"
            }
            Message::NotAnOption { value } => {
                args.push(("value", value.clone()));
                "not-an-option"
            }
            Message::NotAnOptionOrTwice { value } => {
                args.push(("value", value.clone()));
                "not-an-option-or-twice"
            }
            Message::ExpectedTime => "expected-time",
            Message::ExpectedDate => "expected-date",
            Message::ExpectedDateTime => "expected-datetime",
            Message::ExpectedAcknowledge => "expected-acknowledge",
            Message::TakesNoAnswer => "takes-no-answer",
            Message::Miscalculated { value, expected } => {
                args.push(("value", value.clone()));
                args.push(("expected", expected.clone()));
                "miscalculated"
            }
            Message::ExpectedMedia => "expected-media",
            Message::HiddenAnswered => "hidden-answered",
            Message::UnknownField { key, form, version } => {
                args.push(("key", key.clone()));
                args.push(("form", form.clone()));
                args.push(("version", version.to_string()));
                "unknown-field"
            }
        };
        (id, args)
    }

    /// The message in `lang` (`kk`, `ru`, `en`; a region such as `ru-KZ`
    /// counts as its language), English when `lang` is not shipped.
    pub(crate) fn render(&self, lang: &str) -> String {
        let (id, args) = self.id_and_args();
        catalog().text(lang, id, &args)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: &[&str] = &[
        "required",
        "expected-yes-no",
        "expected-whole-number",
        "expected-number",
        "expected-text",
        "expected-one-option",
        "expected-options",
        "out-of-range",
        "too-long",
        "not-an-option",
        "not-an-option-or-twice",
        "expected-time",
        "expected-date",
        "expected-datetime",
        "expected-acknowledge",
        "takes-no-answer",
        "miscalculated",
        "expected-media",
        "hidden-answered",
        "unknown-field",
    ];

    #[test]
    fn every_message_exists_in_every_language_and_renders_its_arguments() {
        for lang in catalog().languages() {
            for id in ALL {
                assert!(catalog().has(lang, id), "{lang} lacks {id}");
            }
        }
        let m = Message::OutOfRange {
            value: "12".into(),
            min: "0".into(),
            max: "10".into(),
        };
        assert_eq!(m.render("en"), "12 is outside 0..10");
        assert_eq!(m.render("ru"), "12 вне диапазона 0..10");
        assert_eq!(m.render("kk-KZ"), "12 0..10 аралығынан тыс");
        assert_eq!(
            m.render("fr"),
            "12 is outside 0..10",
            "English when not shipped"
        );
        assert_ne!(
            Message::Required.render("kk"),
            Message::Required.render("en")
        );
    }
}
