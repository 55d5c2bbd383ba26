//! The interactive SQL shell: rustyline line editing and history, statements that may span
//! lines and end with `;`, and a few backslash commands (`\d`, `\d TABLE`, `\q`, `\?`).
//! An error is printed and the shell goes on.

use std::path::{Path, PathBuf};
use std::time::Instant;

use rustyline::DefaultEditor;
use rustyline::error::ReadlineError;
use sluice_sql::SqlEngine;
use tokio::runtime::Runtime;

use super::output::{self, OutputFormat};

const HELP: &str = "\
Statements end with ';' and may span lines. Commands:
  \\d          list your tables and views (SHOW TABLES lists the system ones too)
  \\d TABLE    describe a table (DESCRIBE TABLE)
  \\q          quit (also Ctrl-D)
  \\?          this help
See docs/sql.md for CREATE TABLE ... WITH (topic = ...), formats and metadata columns.";

/// What `\d` runs: the session's tables and views, without the system schemas
/// (`information_schema`, `pg_catalog`) that `SHOW TABLES` lists as well.
const LIST_TABLES: &str = "SELECT table_schema, table_name, table_type \
     FROM information_schema.tables \
     WHERE table_schema NOT IN ('information_schema', 'pg_catalog') \
     ORDER BY table_schema, table_name";

/// Where history is kept: `~/.sluice_history`, or `fallback_dir` without a home.
pub fn history_path(fallback_dir: &Path) -> PathBuf {
    match std::env::var_os("HOME") {
        Some(home) => PathBuf::from(home).join(".sluice_history"),
        None => fallback_dir.join(".sluice_history"),
    }
}

/// Runs the shell until `\q` or end of input, keeping history in `history`.
pub fn run(
    runtime: &Runtime,
    engine: &SqlEngine,
    format: OutputFormat,
    history: &Path,
) -> anyhow::Result<()> {
    let mut editor = DefaultEditor::new()?;
    // No history yet is normal; a history that cannot be read is not worth stopping for.
    let _ = editor.load_history(history);
    println!(
        "sluice sql on {} — \\? for help, \\q to quit",
        engine.backend().describe()
    );
    let mut buffer = String::new();
    loop {
        let prompt = if buffer.is_empty() {
            "sluice> "
        } else {
            "     -> "
        };
        let line = match editor.readline(prompt) {
            Ok(line) => line,
            Err(ReadlineError::Interrupted) => {
                buffer.clear();
                continue;
            }
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(e.into()),
        };
        let trimmed = line.trim();
        if buffer.is_empty() && trimmed.starts_with('\\') {
            let _ = editor.add_history_entry(trimmed);
            let sql = match trimmed.split_whitespace().collect::<Vec<_>>().as_slice() {
                ["\\q"] => break,
                ["\\?"] | ["\\h"] => {
                    println!("{HELP}");
                    continue;
                }
                ["\\d"] => LIST_TABLES.to_string(),
                ["\\d", table] => format!("DESCRIBE {table}"),
                _ => {
                    println!("unknown command {trimmed} (\\? for help)");
                    continue;
                }
            };
            run_statements(runtime, engine, &sql, format);
            continue;
        }
        if buffer.is_empty() && matches!(trimmed, "quit" | "exit") {
            break;
        }
        if trimmed.is_empty() && buffer.is_empty() {
            continue;
        }
        buffer.push_str(&line);
        buffer.push('\n');
        if !trimmed.ends_with(';') {
            continue;
        }
        let sql = std::mem::take(&mut buffer);
        let _ = editor.add_history_entry(sql.trim());
        run_statements(runtime, engine, &sql, format);
    }
    if let Err(e) = editor.save_history(history) {
        eprintln!(
            "warning: could not save history to {}: {e}",
            history.display()
        );
    }
    Ok(())
}

/// Runs statements, printing each result and its timing, or the error.
fn run_statements(runtime: &Runtime, engine: &SqlEngine, sql: &str, format: OutputFormat) {
    let statements = match SqlEngine::parse(sql) {
        Ok(statements) => statements,
        Err(e) => {
            eprintln!("error: {e}");
            return;
        }
    };
    for statement in statements {
        let started = Instant::now();
        match runtime.block_on(engine.execute_statement(statement)) {
            Ok(result) => {
                let mut stdout = std::io::stdout().lock();
                if let Err(e) = output::print(&mut stdout, &result, format) {
                    eprintln!("error: {e:#}");
                }
                println!("{}", output::timing(&result, started.elapsed()));
            }
            Err(e) => {
                eprintln!("error: {e}");
                return;
            }
        }
    }
}
