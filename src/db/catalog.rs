//! The canned queries of `queries/`, built into the binary so that it answers
//! them anywhere, and how `ghreplay query` resolves what it was given.

use std::path::Path;

/// A canned query: its name (the file name without `.sql`) and its SQL,
/// which opens with a comment saying what it answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Canned {
    pub name: &'static str,
    pub sql: &'static str,
}

macro_rules! canned {
    ($($name:literal),* $(,)?) => {
        &[$(Canned { name: $name, sql: include_str!(concat!("../../queries/", $name, ".sql")) }),*]
    };
}

/// Every canned query; a test holds this list to the files in `queries/`.
pub const CANNED: &[Canned] = canned![
    "releases-per-repository",
    "events-per-hour",
    "active-repositories",
    "active-senders",
    "pull-requests",
    "went-private",
];

impl Canned {
    /// The header comment, as one line of prose.
    #[must_use]
    pub fn description(&self) -> String {
        self.sql
            .lines()
            .map_while(|l| l.strip_prefix("--"))
            .map(str::trim)
            .collect::<Vec<_>>()
            .join(" ")
    }
}

#[must_use]
pub fn find(name: &str) -> Option<&'static Canned> {
    CANNED.iter().find(|c| c.name == name)
}

/// What `ghreplay query` was asked to run.
#[derive(Debug, PartialEq, Eq)]
pub enum QueryText {
    Canned(&'static Canned),
    /// SQL read from a file.
    File(String),
    /// SQL given on the command line.
    Inline(String),
}

impl QueryText {
    #[must_use]
    pub fn sql(&self) -> &str {
        match self {
            QueryText::Canned(c) => c.sql,
            QueryText::File(s) | QueryText::Inline(s) => s,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("{0}: {1}")]
    Read(String, std::io::Error),
    #[error(
        "no canned query {0:?}; `ghreplay query --list` shows them, or give SQL or a FILE.sql"
    )]
    Unknown(String),
}

/// A canned query's name, a file ending in `.sql`, or else SQL itself. A
/// single word that names nothing is an unknown query, not SQL.
pub fn resolve(arg: &str) -> Result<QueryText, ResolveError> {
    if let Some(c) = find(arg) {
        return Ok(QueryText::Canned(c));
    }
    if Path::new(arg)
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("sql"))
    {
        return std::fs::read_to_string(arg)
            .map(QueryText::File)
            .map_err(|e| ResolveError::Read(arg.to_owned(), e));
    }
    if arg
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(ResolveError::Unknown(arg.to_owned()));
    }
    Ok(QueryText::Inline(arg.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_in_queries_is_canned_and_described() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/queries");
        let mut files: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter_map(|n| n.strip_suffix(".sql").map(str::to_owned))
            .filter(|n| n != "schema")
            .collect();
        files.sort();
        let mut names: Vec<&str> = CANNED.iter().map(|c| c.name).collect();
        names.sort_unstable();
        assert_eq!(files, names);
        for c in CANNED {
            assert!(
                c.description().len() > 20,
                "{} needs a header comment",
                c.name
            );
        }
    }

    #[test]
    fn names_files_and_sql_are_told_apart() {
        assert_eq!(
            resolve("events-per-hour").unwrap(),
            QueryText::Canned(find("events-per-hour").unwrap())
        );
        assert!(matches!(
            resolve("no-such-query"),
            Err(ResolveError::Unknown(_))
        ));
        assert!(matches!(
            resolve("missing.sql"),
            Err(ResolveError::Read(..))
        ));
        assert_eq!(
            resolve("SELECT 1").unwrap(),
            QueryText::Inline("SELECT 1".into())
        );
    }
}
