//! Parts of the documentation generated from the code stay equal to it. Each part sits
//! between `<!-- NAME:start -->` and `<!-- NAME:end -->` in a Markdown file; when the file
//! differs from the rendering the test fails, and `UPDATE_DOCS=1 cargo test --test docs`
//! rewrites the file instead.

use std::path::PathBuf;

use shards::preflight::PreflightError;

#[test]
fn the_preflight_error_table_matches_the_code() {
    let mut table = String::from("| message | what it means / what to do |\n|---|---|\n");
    for e in PreflightError::examples() {
        let message = code_span(&e.to_string());
        let explanation = e.explanation().replace('|', "\\|");
        table.push_str(&format!("| {message} | {explanation} |\n"));
    }
    check_generated("docs/configuration.md", "preflight-errors", &table);
}

/// `text` as a Markdown code span inside a table cell: fenced with one more backtick than
/// its longest run of backticks, padded when it starts or ends with one, `|` escaped.
fn code_span(text: &str) -> String {
    let longest_run = text.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest_run + 1);
    let pad = if text.starts_with('`') || text.ends_with('`') {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{}{pad}{fence}", text.replace('|', "\\|"))
}

/// Compares the part `name` of `doc` (relative to the repository root) with `rendered`;
/// rewrites it when `UPDATE_DOCS=1`, fails otherwise.
fn check_generated(doc: &str, name: &str, rendered: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(doc);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let start = format!("<!-- {name}:start -->\n");
    let end = format!("<!-- {name}:end -->");
    let Some((before, rest)) = text.split_once(&start) else {
        panic!("{doc} has no line `{}`", start.trim_end());
    };
    let Some((current, after)) = rest.split_once(&end) else {
        panic!("{doc} has no `{end}` after `{}`", start.trim_end());
    };
    if current == rendered {
        return;
    }
    if std::env::var("UPDATE_DOCS").is_ok_and(|v| v == "1") {
        std::fs::write(&path, format!("{before}{start}{rendered}{end}{after}"))
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        eprintln!("rewrote the {name} part of {doc}");
        return;
    }
    panic!(
        "{doc}: the part between `{}` and `{end}` differs from the code.\n\
         --- in the file ---\n{current}--- from the code ---\n{rendered}\
         Run `UPDATE_DOCS=1 cargo test --test docs` to rewrite it, then review and commit it.",
        start.trim_end()
    );
}
