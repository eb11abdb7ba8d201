//! Publishing a form version: what phones fill in from their next sync.
//! A published or shipped version is never changed: records were checked
//! against it, so the same id and version with other content is refused
//! (publish it as a new version instead).

use observer_core::forms::{FormDefinition, default_forms};

use crate::storage::{PublishedForm, Storage, StorageError};

/// What publishing did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Published {
    /// A new version, sent to phones at their next sync.
    New,
    /// This exact version was published already.
    Already,
    /// This exact version ships with Observer; nothing to send.
    Shipped,
}

/// Why a form was not published.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// Not a valid form definition.
    #[error(transparent)]
    Invalid(#[from] observer_core::forms::FormError),
    /// The id and version are taken by other content.
    #[error("{id} version {version} is already {} with other content; publish it as a new version", if *.shipped { "shipped with Observer" } else { "published" })]
    Taken {
        id: String,
        version: u32,
        shipped: bool,
    },
    /// The database failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Publishes the definition `text`.
pub fn publish(
    storage: &dyn Storage,
    text: &str,
    now_ms: i64,
) -> Result<(FormDefinition, Published), PublishError> {
    let def = FormDefinition::parse(text)?;
    let taken = |shipped| PublishError::Taken {
        id: def.id.clone(),
        version: def.version,
        shipped,
    };
    if let Some(shipped) = default_forms()
        .iter()
        .find(|f| f.id == def.id && f.version == def.version)
    {
        if *shipped != def {
            return Err(taken(true));
        }
        return Ok((def, Published::Shipped));
    }
    if let Some(old) = storage.form(&def.id, def.version)?
        && old.definition != text
    {
        return Err(taken(false));
    }
    let new = storage.publish_form(
        &PublishedForm {
            id: def.id.clone(),
            version: def.version,
            definition: text.to_string(),
        },
        now_ms,
    )?;
    let how = if new {
        tracing::info!(form = %def.id, version = def.version, "form published");
        Published::New
    } else {
        Published::Already
    };
    Ok((def, how))
}

/// A definition as it is published when it comes from a workbook: pretty
/// JSON, so the same workbook imported twice is the same publication.
pub fn definition_text(def: &FormDefinition) -> String {
    serde_json::to_string_pretty(&def.to_json()).unwrap_or_default()
}
