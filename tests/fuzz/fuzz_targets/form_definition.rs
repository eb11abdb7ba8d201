//! A form definition published by a coordinator (or anyone who can reach
//! the phone), then answers validated against it. Must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use observer_core::forms::FormDefinition;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // The input is a definition, optionally followed by a NUL and answers.
    let (def, answers) = text.split_once('\0').unwrap_or((text, "{}"));
    if let Ok(form) = FormDefinition::parse(def) {
        if let Ok(serde_json::Value::Object(a)) = serde_json::from_str(answers) {
            for lang in ["kk", "ru", "en"] {
                let _ = form.validate(&a, lang);
            }
        }
    }
});
