//! Validation messages in the observer's language (Kazakh, Russian,
//! English), from Fluent files in `core/locales/`: translators edit those,
//! not Rust. A language without a message falls back to English.

use std::sync::OnceLock;

use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentArgs, FluentResource, FluentValue};
use unic_langid::LanguageIdentifier;

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
    ExpectedMedia,
    HiddenAnswered,
    UnknownField {
        key: String,
        form: String,
        version: u32,
    },
}

fn bundles() -> &'static [(&'static str, FluentBundle<FluentResource>)] {
    static BUNDLES: OnceLock<Vec<(&'static str, FluentBundle<FluentResource>)>> = OnceLock::new();
    BUNDLES.get_or_init(|| {
        LOCALES
            .iter()
            .map(|(lang, source)| {
                let id: LanguageIdentifier = lang.parse().expect("shipped locale ids parse");
                let mut bundle = FluentBundle::new_concurrent(vec![id]);
                // Plain text for logs and terminals: no bidi isolation marks.
                bundle.set_use_isolating(false);
                let resource = FluentResource::try_new(source.to_string())
                    .expect("shipped Fluent files parse (tested)");
                bundle
                    .add_resource(resource)
                    .expect("shipped Fluent files have no duplicate ids (tested)");
                (*lang, bundle)
            })
            .collect()
    })
}

impl Message {
    fn id_and_args(&self) -> (&'static str, FluentArgs<'_>) {
        let mut args = FluentArgs::new();
        let id = match self {
            Message::Required => "required",
            Message::ExpectedYesNo => "expected-yes-no",
            Message::ExpectedWholeNumber => "expected-whole-number",
            Message::ExpectedNumber => "expected-number",
            Message::ExpectedText => "expected-text",
            Message::ExpectedOneOption => "expected-one-option",
            Message::ExpectedOptions => "expected-options",
            Message::OutOfRange { value, min, max } => {
                args.set("value", FluentValue::from(value.as_str()));
                args.set("min", FluentValue::from(min.as_str()));
                args.set("max", FluentValue::from(max.as_str()));
                "out-of-range"
            }
            Message::TooLong { max } => {
                args.set("max", FluentValue::from(max.to_string()));
                "too-long"
            }
            Message::NotAnOption { value } => {
                args.set("value", FluentValue::from(value.as_str()));
                "not-an-option"
            }
            Message::NotAnOptionOrTwice { value } => {
                args.set("value", FluentValue::from(value.as_str()));
                "not-an-option-or-twice"
            }
            Message::ExpectedTime => "expected-time",
            Message::ExpectedMedia => "expected-media",
            Message::HiddenAnswered => "hidden-answered",
            Message::UnknownField { key, form, version } => {
                args.set("key", FluentValue::from(key.as_str()));
                args.set("form", FluentValue::from(form.as_str()));
                args.set("version", FluentValue::from(version.to_string()));
                "unknown-field"
            }
        };
        (id, args)
    }

    /// The message in `lang` (`kk`, `ru`, `en`; a region such as `ru-KZ`
    /// counts as its language), English when `lang` is not shipped.
    pub(crate) fn render(&self, lang: &str) -> String {
        let (id, args) = self.id_and_args();
        let base = lang.split(['-', '_']).next().unwrap_or(lang);
        let bundles = bundles();
        let pick = |l: &str| bundles.iter().find(|(b, _)| *b == l).map(|(_, b)| b);
        for bundle in [pick(base), pick("en")].into_iter().flatten() {
            if let Some(pattern) = bundle.get_message(id).and_then(|m| m.value()) {
                let mut errors = Vec::new();
                let text = bundle.format_pattern(pattern, Some(&args), &mut errors);
                if errors.is_empty() {
                    return text.into_owned();
                }
            }
        }
        id.to_string()
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
        "expected-media",
        "hidden-answered",
        "unknown-field",
    ];

    #[test]
    fn every_message_exists_in_every_language_and_renders_its_arguments() {
        for (lang, bundle) in bundles() {
            for id in ALL {
                assert!(bundle.has_message(id), "{lang} lacks {id}");
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
