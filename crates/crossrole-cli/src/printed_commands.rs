//! Every `crossrole …` command the CLI, crossroled or the web console prints for a person to run parses with the
//! CLI's own parser: a command people copy must be one the CLI takes.
//!
//! The commands are found in the sources as they are written there: a backquoted `crossrole …` in a string (Rust)
//! or a template literal (the web console's TypeScript), outside comments. What the program fills in (`{}`,
//! `${row.id}`) and what the person does (`<spec file>`) become a sample word.

use std::path::{Path, PathBuf};

use clap::Parser;

use super::Cli;

/// The sources that print commands: every crate's `src/` (generated code aside) and the web console's.
fn sources(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root.join("crates"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("src"))
        .filter(|p| !p.starts_with(root.join("crates/crossrole-proto")))
        .collect();
    dirs.push(root.join("web/src"));
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() && !path.ends_with("gen") {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs" || e == "ts") && !path.ends_with(file!()) {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// The backquoted `crossrole …` commands on a line that is not a comment.
fn commands(line: &str) -> Vec<String> {
    let trimmed = line.trim_start();
    if trimmed.starts_with("//") || trimmed.starts_with('*') || trimmed.starts_with("/*") {
        return vec![];
    }
    line.split('`').skip(1).step_by(2).filter(|s| s.starts_with("crossrole ")).map(String::from).collect()
}

/// `command` with what is filled in (`{…}`, `${…}`, `<…>`) as one sample word, split into words.
fn words(command: &str) -> Vec<String> {
    let mut out = String::new();
    let mut chars = command.chars().peekable();
    while let Some(c) = chars.next() {
        let close = match c {
            '$' if chars.peek() == Some(&'{') => {
                chars.next();
                '}'
            }
            '{' => '}',
            '<' => '>',
            other => {
                out.push(other);
                continue;
            }
        };
        for c in chars.by_ref() {
            if c == close {
                break;
            }
        }
        out.push_str("sample");
    }
    out.split_whitespace().map(String::from).collect()
}

#[test]
fn every_printed_command_parses() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut found = Vec::new();
    let mut broken = Vec::new();
    for path in sources(&root) {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        for (n, line) in text.lines().enumerate() {
            for command in commands(line) {
                let place = format!("{}:{}", path.strip_prefix(&root).unwrap_or(&path).display(), n + 1);
                if let Err(e) = Cli::try_parse_from(words(&command)) {
                    broken.push(format!("{place}: `{command}`: {}", e.kind()));
                }
                found.push((place, command));
            }
        }
    }
    assert!(broken.is_empty(), "commands the CLI does not take:\n{}", broken.join("\n"));
    // The ones people meet first must be among those checked, or the search missed them.
    for expected in ["crossrole console ${row.id} --binding ${chosen.name}", "crossrole ops watch {}"] {
        assert!(found.iter().any(|(_, c)| c == expected), "{expected:?} not found among {found:#?}");
    }
}

#[test]
fn filled_in_parts_become_one_word() {
    assert_eq!(
        words("crossrole console ${row.id} --binding ${chosen.name}"),
        ["crossrole", "console", "sample", "--binding", "sample"]
    );
    assert_eq!(words("crossrole plan -f <spec file>"), ["crossrole", "plan", "-f", "sample"]);
    assert_eq!(commands("    // `crossrole nothing` in a comment"), Vec::<String>::new());
    assert_eq!(commands("\"run `crossrole ops watch {}` then `ls`\""), ["crossrole ops watch {}"]);
    assert!(Cli::try_parse_from(words("crossrole console --binding sample --account sample")).is_err());
}
