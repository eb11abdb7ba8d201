//! Text in the reader's language from Project Fluent catalogues: the
//! phone's validation messages (`core/locales/`) and the coordinator
//! workspace (`server/locales/`) both render through a [`Catalog`], so
//! translators edit `.ftl` files, never Rust, and plural and argument
//! rules are Fluent's, not ours.

use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentArgs, FluentResource, FluentValue};
use unic_langid::LanguageIdentifier;

/// Shipped catalogues, one bundle per language; English is the fallback.
pub struct Catalog {
    bundles: Vec<(&'static str, FluentBundle<FluentResource>)>,
}

/// The language part of a tag (`ru-KZ` is `ru`).
pub fn base_language(tag: &str) -> &str {
    tag.split(['-', '_']).next().unwrap_or(tag)
}

impl Catalog {
    /// Bundles from `(language, Fluent source)` pairs compiled into the
    /// binary. A shipped file that does not parse is a build defect, which
    /// each catalogue's test catches; it panics here rather than show
    /// coordinators message ids.
    pub fn new(locales: &[(&'static str, &'static str)]) -> Self {
        let bundles = locales
            .iter()
            .map(|(lang, source)| {
                let id: LanguageIdentifier = lang.parse().expect("shipped locale ids parse");
                let mut bundle = FluentBundle::new_concurrent(vec![id]);
                // Plain text for logs, terminals and escaped HTML: no bidi
                // isolation marks.
                bundle.set_use_isolating(false);
                let resource = FluentResource::try_new(source.to_string())
                    .expect("shipped Fluent files parse (tested)");
                bundle
                    .add_resource(resource)
                    .expect("shipped Fluent files have no duplicate ids (tested)");
                (*lang, bundle)
            })
            .collect();
        Self { bundles }
    }

    /// The languages shipped, in the order given.
    pub fn languages(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.bundles.iter().map(|(l, _)| *l)
    }

    /// Whether `lang` has message `id` (for the catalogues' tests).
    pub fn has(&self, lang: &str, id: &str) -> bool {
        self.bundles
            .iter()
            .any(|(l, b)| *l == lang && b.has_message(id))
    }

    /// Message `id` in `lang` with `args`, English when `lang` is not
    /// shipped or lacks it, and the id itself when English lacks it too.
    pub fn text(&self, lang: &str, id: &str, args: &[(&str, String)]) -> String {
        let mut fluent_args = FluentArgs::new();
        for (k, v) in args {
            fluent_args.set(*k, FluentValue::from(v.as_str()));
        }
        let pick = |l: &str| self.bundles.iter().find(|(b, _)| *b == l).map(|(_, b)| b);
        for bundle in [pick(base_language(lang)), pick("en")]
            .into_iter()
            .flatten()
        {
            if let Some(pattern) = bundle.get_message(id).and_then(|m| m.value()) {
                let mut errors = Vec::new();
                let text = bundle.format_pattern(pattern, Some(&fluent_args), &mut errors);
                if errors.is_empty() {
                    return text.into_owned();
                }
            }
        }
        id.to_string()
    }
}
