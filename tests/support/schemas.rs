//! The JSON Schemas in `schemas/`, loaded with their cross-references, to
//! validate real messages in tests.

use std::path::{Path, PathBuf};

use serde_json::Value;

pub struct Schemas {
    docs: Vec<(String, Value)>,
}

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemas")
}

impl Schemas {
    pub fn load() -> Schemas {
        let mut docs = Vec::new();
        for e in std::fs::read_dir(dir()).expect("schemas/") {
            let p = e.expect("entry").path();
            let name = p
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default()
                .to_string();
            if let Some(stem) = name.strip_suffix(".schema.json") {
                let v: Value = serde_json::from_str(&std::fs::read_to_string(&p).expect("read"))
                    .expect("schema is JSON");
                docs.push((stem.to_string(), v));
            }
        }
        Schemas { docs }
    }

    /// Errors of `instance` against schema `name` (empty when valid).
    pub fn errors(&self, name: &str, instance: &Value) -> Vec<String> {
        let pairs: Vec<(String, jsonschema::Resource)> = self
            .docs
            .iter()
            .map(|(_, v)| {
                (
                    v["$id"].as_str().expect("$id").to_string(),
                    jsonschema::Resource::from_contents(v.clone()),
                )
            })
            .collect();
        let registry = jsonschema::Registry::new()
            .extend(pairs)
            .expect("registry")
            .prepare()
            .expect("registry");
        let schema = &self
            .docs
            .iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("no schema {name}"))
            .1;
        let validator = jsonschema::options()
            .with_registry(&registry)
            .build(schema)
            .unwrap_or_else(|e| panic!("schema {name}: {e}"));
        validator
            .iter_errors(instance)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect()
    }

    pub fn assert_valid(&self, name: &str, instance: &Value) {
        let errors = self.errors(name, instance);
        assert!(
            errors.is_empty(),
            "{name}: {errors:?}\n{}",
            serde_json::to_string_pretty(instance).unwrap_or_default()
        );
    }
}
