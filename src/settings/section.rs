//! One section of the live settings ([`super::page`], [`super::chat`]), whatever its fields:
//! the console's values are kept by field name (as the API names them, camelCase) over
//! `config.toml`'s, so a field the console never set follows the config file. A section's type
//! says how its values are cleaned up and checked ([`Section`]); everything else (applying,
//! patching, where each value comes from, naming the field of a wrong type) is here, once.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The values of one section: a struct with named fields (serialized as a JSON object).
pub trait Section: Serialize + DeserializeOwned + Clone + PartialEq + Default {
    /// The values tidied up (trimmed, empty entries dropped) before they are checked.
    fn cleaned(self) -> Self;
    /// The first value that breaks a limit.
    fn check(&self) -> Result<(), FieldError>;
}

/// A value that breaks a limit: which field (as the API names it), and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

pub fn field_error(field: &str, message: impl Into<String>) -> FieldError {
    FieldError {
        field: field.to_owned(),
        message: message.into(),
    }
}

/// Where a setting's value comes from, as the console shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Default,
    Config,
    Console,
}

/// The console's values of one section, by field name. What `settings.json` holds for it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Overrides(Map<String, Value>);

impl Overrides {
    /// The values in force: the console's where it set one, else `config`'s. An error names
    /// a field the console's value does not fit (a file edited by hand).
    pub fn apply_to<T: Section>(&self, config: &T) -> Result<T, FieldError> {
        let mut values = object(config);
        for (field, value) in &self.0 {
            if !values.contains_key(field) {
                return Err(field_error(field, "not a setting"));
            }
            values.insert(field.clone(), value.clone());
        }
        typed(values)
    }

    /// Where each value of [`Self::apply_to`] comes from: the console, `config.toml` where it
    /// differs from the built-in default, else the default.
    pub fn sources<T: Section>(&self, config: &T) -> BTreeMap<String, Source> {
        let default = object(&T::default());
        object(config)
            .into_iter()
            .map(|(field, value)| {
                let source = if self.0.contains_key(&field) {
                    Source::Console
                } else if default.get(&field) != Some(&value) {
                    Source::Config
                } else {
                    Source::Default
                };
                (field, source)
            })
            .collect()
    }

    /// These overrides with `patch` applied (a field left out stays as it is, `null` drops the
    /// console's value, anything else sets it), and the values they give over `config`,
    /// cleaned up and checked. On an error (an unknown field, a wrong type, a value over a
    /// limit) nothing changes.
    pub fn patched<T: Section>(
        &self,
        config: &T,
        patch: Map<String, Value>,
    ) -> Result<(Overrides, T), FieldError> {
        let fields = object(&T::default());
        let mut next = self.0.clone();
        for (field, value) in patch {
            if !fields.contains_key(&field) {
                return Err(field_error(&field, "not a setting"));
            }
            if value.is_null() {
                next.remove(&field);
            } else {
                next.insert(field, value);
            }
        }
        let values = Overrides(next.clone()).apply_to(config)?.cleaned();
        values.check()?;
        // Keep what was saved the way it is shown: cleaned.
        let cleaned = object(&values);
        for (field, value) in next.iter_mut() {
            if let Some(clean) = cleaned.get(field) {
                *value = clean.clone();
            }
        }
        Ok((Overrides(next), values))
    }
}

fn object<T: Serialize>(values: &T) -> Map<String, Value> {
    match serde_json::to_value(values) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    }
}

/// `values` as `T`; a wrong type is an error naming its field.
fn typed<T: DeserializeOwned>(values: Map<String, Value>) -> Result<T, FieldError> {
    serde_path_to_error::deserialize(Value::Object(values)).map_err(|e| {
        let field = e
            .path()
            .iter()
            .next()
            .map(|segment| segment.to_string())
            .unwrap_or_default();
        field_error(&field, e.inner().to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Example {
        name: String,
        limit: u32,
    }

    impl Default for Example {
        fn default() -> Self {
            Example {
                name: "default".into(),
                limit: 10,
            }
        }
    }

    impl Section for Example {
        fn cleaned(self) -> Self {
            Example {
                name: self.name.trim().to_owned(),
                ..self
            }
        }
        fn check(&self) -> Result<(), FieldError> {
            if self.limit > 100 {
                return Err(field_error("limit", "at most 100"));
            }
            Ok(())
        }
    }

    fn patch(json: Value) -> Map<String, Value> {
        json.as_object().unwrap().clone()
    }

    #[test]
    fn a_patch_sets_resets_and_leaves_fields() {
        let config = Example {
            name: "from config".into(),
            limit: 10,
        };
        let (overrides, values) = Overrides::default()
            .patched(
                &config,
                patch(serde_json::json!({"name": "  mine ", "limit": 20})),
            )
            .unwrap();
        assert_eq!(
            values,
            Example {
                name: "mine".into(),
                limit: 20
            }
        );
        assert_eq!(overrides.0["name"], "mine", "saved cleaned");
        let sources = overrides.sources(&config);
        assert_eq!(
            (sources["name"], sources["limit"]),
            (Source::Console, Source::Console)
        );

        let (overrides, values) = overrides
            .patched(&config, patch(serde_json::json!({"name": null})))
            .unwrap();
        assert_eq!(
            values,
            Example {
                name: "from config".into(),
                limit: 20
            }
        );
        let sources = overrides.sources(&config);
        assert_eq!(sources["name"], Source::Config);
        assert_eq!(
            Overrides::default().sources(&config)["limit"],
            Source::Default
        );
    }

    #[test]
    fn bad_patches_name_the_field_and_change_nothing() {
        let config = Example::default();
        for (json, field) in [
            (serde_json::json!({"limit": 101}), "limit"),
            (serde_json::json!({"limit": "ten"}), "limit"),
            (serde_json::json!({"limit": -1}), "limit"),
            (serde_json::json!({"name": 7}), "name"),
            (serde_json::json!({"colour": "red"}), "colour"),
        ] {
            let error = Overrides::default()
                .patched(&config, patch(json.clone()))
                .unwrap_err();
            assert_eq!(error.field, field, "{json}: {error}");
        }
    }

    #[test]
    fn a_hand_edited_value_of_the_wrong_type_is_an_error_on_apply() {
        let overrides: Overrides = serde_json::from_str(r#"{"limit": "x"}"#).unwrap();
        assert_eq!(
            overrides.apply_to(&Example::default()).unwrap_err().field,
            "limit"
        );
    }
}
