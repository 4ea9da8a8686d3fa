//! Compatibility levels (Confluent's names) and the check of a new schema against a
//! subject's earlier versions under one of them.

use std::fmt;
use std::str::FromStr;

use crate::format::ParsedSchema;
use crate::RegistryError;

/// How a subject's new versions must relate to its earlier ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CompatibilityLevel {
    /// Anything goes.
    None,
    /// Readers of the new schema read data written with the latest version.
    #[default]
    Backward,
    /// ... with every earlier version.
    BackwardTransitive,
    /// Readers of the latest version read data written with the new schema.
    Forward,
    /// ... readers of every earlier version.
    ForwardTransitive,
    /// Backward and forward with the latest version.
    Full,
    /// Backward and forward with every earlier version.
    FullTransitive,
}

impl CompatibilityLevel {
    /// Confluent's name, as `/config` shows it.
    pub fn name(self) -> &'static str {
        match self {
            CompatibilityLevel::None => "NONE",
            CompatibilityLevel::Backward => "BACKWARD",
            CompatibilityLevel::BackwardTransitive => "BACKWARD_TRANSITIVE",
            CompatibilityLevel::Forward => "FORWARD",
            CompatibilityLevel::ForwardTransitive => "FORWARD_TRANSITIVE",
            CompatibilityLevel::Full => "FULL",
            CompatibilityLevel::FullTransitive => "FULL_TRANSITIVE",
        }
    }

    fn transitive(self) -> bool {
        matches!(
            self,
            CompatibilityLevel::BackwardTransitive
                | CompatibilityLevel::ForwardTransitive
                | CompatibilityLevel::FullTransitive
        )
    }

    fn backward(self) -> bool {
        matches!(
            self,
            CompatibilityLevel::Backward
                | CompatibilityLevel::BackwardTransitive
                | CompatibilityLevel::Full
                | CompatibilityLevel::FullTransitive
        )
    }

    fn forward(self) -> bool {
        matches!(
            self,
            CompatibilityLevel::Forward
                | CompatibilityLevel::ForwardTransitive
                | CompatibilityLevel::Full
                | CompatibilityLevel::FullTransitive
        )
    }

    /// Why `new` may not follow `earlier` (the subject's live versions, oldest first)
    /// under this level; empty when it may. A non-transitive level looks at the latest
    /// version only.
    pub fn violations(self, new: &ParsedSchema, earlier: &[ParsedSchema]) -> Vec<String> {
        let against: &[ParsedSchema] = if self.transitive() {
            earlier
        } else {
            earlier.last().map_or(&[], std::slice::from_ref)
        };
        let mut out = Vec::new();
        for old in against {
            if self.backward() {
                if let Err(e) = new.can_read(old) {
                    out.push(format!("{{oldSchemaVersion: backward, reason: {e}}}"));
                }
            }
            if self.forward() {
                if let Err(e) = old.can_read(new) {
                    out.push(format!("{{oldSchemaVersion: forward, reason: {e}}}"));
                }
            }
        }
        out
    }
}

impl fmt::Display for CompatibilityLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for CompatibilityLevel {
    type Err = RegistryError;

    /// Confluent's names, in any case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s.to_ascii_uppercase().as_str() {
            "NONE" => CompatibilityLevel::None,
            "BACKWARD" => CompatibilityLevel::Backward,
            "BACKWARD_TRANSITIVE" => CompatibilityLevel::BackwardTransitive,
            "FORWARD" => CompatibilityLevel::Forward,
            "FORWARD_TRANSITIVE" => CompatibilityLevel::ForwardTransitive,
            "FULL" => CompatibilityLevel::Full,
            "FULL_TRANSITIVE" => CompatibilityLevel::FullTransitive,
            _ => return Err(RegistryError::invalid_compatibility_level(s)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::SchemaType;

    fn avro(fields: &str) -> ParsedSchema {
        let text = format!(r#"{{"type":"record","name":"User","fields":[{fields}]}}"#);
        ParsedSchema::parse(SchemaType::Avro, &text).unwrap()
    }

    #[test]
    fn levels_parse_in_any_case_and_name_themselves() {
        for level in [
            CompatibilityLevel::None,
            CompatibilityLevel::Backward,
            CompatibilityLevel::BackwardTransitive,
            CompatibilityLevel::Forward,
            CompatibilityLevel::ForwardTransitive,
            CompatibilityLevel::Full,
            CompatibilityLevel::FullTransitive,
        ] {
            assert_eq!(level.name().parse::<CompatibilityLevel>(), Ok(level));
            assert_eq!(
                level.name().to_lowercase().parse::<CompatibilityLevel>(),
                Ok(level)
            );
        }
        let err = "SIDEWAYS".parse::<CompatibilityLevel>().unwrap_err();
        assert_eq!((err.status, err.error_code), (422, 42203));
    }

    #[test]
    fn backward_forward_and_full_follow_avro_resolution() {
        let v1 = avro(r#"{"name":"id","type":"long"}"#);
        // A field added with a default: new readers read old data, and old readers
        // ignore the field.
        let with_default =
            avro(r#"{"name":"id","type":"long"},{"name":"email","type":"string","default":""}"#);
        // A field added without a default: new readers cannot read old data.
        let without_default =
            avro(r#"{"name":"id","type":"long"},{"name":"email","type":"string"}"#);
        let earlier = [v1.clone()];
        for level in [
            CompatibilityLevel::Backward,
            CompatibilityLevel::Forward,
            CompatibilityLevel::Full,
        ] {
            assert!(
                level.violations(&with_default, &earlier).is_empty(),
                "{level}"
            );
        }
        assert!(!CompatibilityLevel::Backward
            .violations(&without_default, &earlier)
            .is_empty());
        assert!(CompatibilityLevel::Forward
            .violations(&without_default, &earlier)
            .is_empty());
        assert!(!CompatibilityLevel::Full
            .violations(&without_default, &earlier)
            .is_empty());
        assert!(CompatibilityLevel::None
            .violations(&without_default, &earlier)
            .is_empty());
    }

    #[test]
    fn transitive_levels_look_at_every_earlier_version() {
        let v1 = avro(r#"{"name":"id","type":"long"}"#);
        let v2 = avro(r#"{"name":"id","type":"long"},{"name":"n","type":"int","default":0}"#);
        // Drops the default: reads v2's data (which has n) but not v1's.
        let v3 = avro(r#"{"name":"id","type":"long"},{"name":"n","type":"int"}"#);
        let earlier = [v1, v2];
        assert!(CompatibilityLevel::Backward
            .violations(&v3, &earlier)
            .is_empty());
        assert_eq!(
            CompatibilityLevel::BackwardTransitive
                .violations(&v3, &earlier)
                .len(),
            1
        );
    }
}
