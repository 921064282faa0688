//! A message exists in every language or in none: the same files, the same
//! message ids, the same arguments; and every key the code asks for is in
//! the files (a typo would print the key to a user).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use fluent_syntax::ast;

/// Message id → the variables it uses, per file.
type Messages = BTreeMap<String, BTreeMap<String, BTreeSet<String>>>;

fn locales() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("locales")
}

fn variables_of_pattern(p: &ast::Pattern<&str>, out: &mut BTreeSet<String>) {
    for el in &p.elements {
        if let ast::PatternElement::Placeable { expression } = el {
            variables_of_expression(expression, out);
        }
    }
}

fn variables_of_expression(e: &ast::Expression<&str>, out: &mut BTreeSet<String>) {
    match e {
        ast::Expression::Select { selector, variants } => {
            variables_of_inline(selector, out);
            for v in variants {
                variables_of_pattern(&v.value, out);
            }
        }
        ast::Expression::Inline(i) => variables_of_inline(i, out),
    }
}

fn variables_of_inline(i: &ast::InlineExpression<&str>, out: &mut BTreeSet<String>) {
    match i {
        ast::InlineExpression::VariableReference { id } => {
            out.insert(id.name.to_string());
        }
        ast::InlineExpression::Placeable { expression } => variables_of_expression(expression, out),
        _ => {}
    }
}

fn read(lang: &str) -> Messages {
    let mut files = Messages::new();
    let dir = locales().join(lang);
    for entry in std::fs::read_dir(&dir).expect("a locale folder") {
        let path = entry.expect("entry").path();
        let text = std::fs::read_to_string(&path).expect("a message file");
        let resource = fluent_syntax::parser::parse(text.as_str())
            .unwrap_or_else(|(_, errors)| panic!("{}: {errors:?}", path.display()));
        let mut messages = BTreeMap::new();
        for entry in resource.body {
            if let ast::Entry::Message(m) = entry {
                let mut vars = BTreeSet::new();
                if let Some(v) = &m.value {
                    variables_of_pattern(v, &mut vars);
                }
                let id = m.id.name.to_string();
                assert!(
                    messages.insert(id.clone(), vars).is_none(),
                    "{}: {id} twice",
                    path.display()
                );
            }
        }
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        files.insert(name, messages);
    }
    files
}

#[test]
fn every_message_exists_in_every_language_with_the_same_arguments() {
    let zh = read("zh-CN");
    let en = read("en");
    assert_eq!(
        zh.keys().collect::<Vec<_>>(),
        en.keys().collect::<Vec<_>>(),
        "the same message files in zh-CN and en"
    );
    let mut problems = Vec::new();
    for (file, zh_messages) in &zh {
        let en_messages = &en[file];
        for (id, vars) in zh_messages {
            match en_messages.get(id) {
                None => problems.push(format!("{file}: `{id}` is in zh-CN, not in en")),
                Some(v) if v != vars => problems.push(format!(
                    "{file}: `{id}` uses {vars:?} in zh-CN, {v:?} in en"
                )),
                _ => {}
            }
        }
        for id in en_messages
            .keys()
            .filter(|id| !zh_messages.contains_key(*id))
        {
            problems.push(format!("{file}: `{id}` is in en, not in zh-CN"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(zh.values().map(BTreeMap::len).sum::<usize>() > 100);
}

/// Every `.t("key")`, `t(lang, "key")`, `tr(lang, "key", …)` in the product's
/// sources names a message both languages have.
#[test]
fn every_key_the_code_uses_is_in_the_files() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let pattern =
        regex_lite::Regex::new(r#"\b(?:t|tr)\(\s*(?:[a-z_.]+,\s*)?"([a-z0-9][a-z0-9_-]*)""#)
            .unwrap();
    let mut used = BTreeSet::new();
    let mut stack: Vec<PathBuf> = ["sync-server/src", "field-cli/src"]
        .iter()
        .map(|d| root.join(d))
        .collect();
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("a source folder") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                for c in pattern.captures_iter(&text) {
                    used.insert((c[1].to_string(), path.display().to_string()));
                }
            }
        }
    }
    assert!(used.len() > 50, "the scan finds the keys the code uses");
    let mut missing = Vec::new();
    for lang in ["zh-CN", "en"] {
        let ids: BTreeSet<String> = read(lang)
            .into_values()
            .flat_map(|m| m.into_keys())
            .collect();
        assert!(!ids.contains("surely-not-a-key"));
        for (key, file) in &used {
            if !ids.contains(key) {
                missing.push(format!("{file}: `{key}` has no {lang} message"));
            }
        }
    }
    assert!(missing.is_empty(), "{}", missing.join("\n"));
}
