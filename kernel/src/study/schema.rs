//! The study file's schema and its migrations. `PRAGMA user_version` holds the version; opening
//! a file applies the missing migrations in order, each in one transaction, and refuses a file
//! that is not a study or was written by a newer dynaboot.

use crate::error::{Error, Result};
use rusqlite::Connection;
use std::path::Path;

/// Each entry takes the schema from version `i` to `i + 1`.
const MIGRATIONS: [&str; 3] = [
    // 1: the study, its systems, items with the candidates of every system, raters and one
    // judgment per rater and item (a changed judgment replaces the old one).
    "CREATE TABLE study (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        name TEXT NOT NULL,
        created_ms INTEGER NOT NULL,
        secret TEXT NOT NULL,
        source TEXT NOT NULL
    );
    CREATE TABLE systems (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        description TEXT NOT NULL
    );
    CREATE TABLE items (
        id INTEGER PRIMARY KEY,
        task TEXT NOT NULL,
        instruction TEXT NOT NULL,
        source_png BLOB NOT NULL,
        target_png BLOB
    );
    CREATE TABLE candidates (
        item INTEGER NOT NULL REFERENCES items(id),
        system INTEGER NOT NULL REFERENCES systems(id),
        png BLOB NOT NULL,
        PRIMARY KEY (item, system)
    );
    CREATE TABLE raters (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        token TEXT NOT NULL UNIQUE,
        seed INTEGER NOT NULL,
        created_ms INTEGER NOT NULL
    );
    CREATE TABLE judgments (
        rater INTEGER NOT NULL REFERENCES raters(id),
        item INTEGER NOT NULL REFERENCES items(id),
        shown TEXT NOT NULL,
        best INTEGER NOT NULL REFERENCES systems(id),
        worst INTEGER NOT NULL REFERENCES systems(id),
        ms INTEGER NOT NULL CHECK (ms >= 0),
        revisions INTEGER NOT NULL DEFAULT 1,
        updated_ms INTEGER NOT NULL,
        PRIMARY KEY (rater, item),
        CHECK (best <> worst)
    );",
    // 2: every submission kept in order, changes of mind included, beside the judgment that
    // counts.
    "CREATE TABLE submissions (
        id INTEGER PRIMARY KEY,
        rater INTEGER NOT NULL REFERENCES raters(id),
        item INTEGER NOT NULL REFERENCES items(id),
        best INTEGER NOT NULL,
        worst INTEGER NOT NULL,
        ms INTEGER NOT NULL,
        at_ms INTEGER NOT NULL
    );
    INSERT INTO submissions (rater, item, best, worst, ms, at_ms)
        SELECT rater, item, best, worst, ms, updated_ms FROM judgments;",
    // 3: the scene states of items from the embedded world (JSON), so the exact judge can
    // score every candidate beside the raters.
    "ALTER TABLE items ADD COLUMN sidecar TEXT;",
];

/// The version this build writes.
pub(crate) const VERSION: u32 = MIGRATIONS.len() as u32;

pub(crate) fn study_error(path: &Path, message: impl std::fmt::Display) -> Error {
    Error::Study {
        path: path.to_path_buf(),
        message: message.to_string(),
    }
}

/// The schema version of the study at `path`, refusing a file that is not a study this build
/// reads: not SQLite, SQLite without a study's version (an empty file too: `study create`
/// writes its version before the file appears), or written by a newer dynaboot. Only reads.
pub(crate) fn study_version(conn: &Connection, path: &Path) -> Result<u32> {
    let version: u32 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(|e| study_error(path, format!("not an SQLite database ({e})")))?;
    match version {
        0 => Err(study_error(
            path,
            "is not a dynaboot study (an empty file, or an SQLite database without a study's \
             schema version); give a file made by `dynaboot study create`",
        )),
        v if v > VERSION => Err(study_error(
            path,
            format!(
                "schema version {v} was written by a newer dynaboot (this one reads up to \
                 {VERSION}); update dynaboot to open it"
            ),
        )),
        v => Ok(v),
    }
}

/// Brings `conn` (the file at `path`) to [`VERSION`], applying the missing migrations.
pub(crate) fn migrate(conn: &mut Connection, path: &Path) -> Result<u32> {
    migrate_to(conn, path, VERSION)
}

/// Brings `conn` to `target` (a test writes old versions with it).
pub(crate) fn migrate_to(conn: &mut Connection, path: &Path, target: u32) -> Result<u32> {
    let err = |e: rusqlite::Error| study_error(path, e);
    let version: u32 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(err)?;
    for (v, sql) in MIGRATIONS
        .iter()
        .enumerate()
        .take(target as usize)
        .skip(version as usize)
    {
        // The version is read again under the write lock: another process may have applied
        // this step since.
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(err)?;
        let now: u32 = tx
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(err)?;
        if now > v as u32 {
            continue;
        }
        tx.execute_batch(sql).map_err(err)?;
        tx.pragma_update(None, "user_version", (v + 1) as u32)
            .map_err(err)?;
        tx.commit().map_err(err)?;
    }
    Ok(target.max(version))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::study::store::Study;
    use crate::study::store::tests::small_study;

    #[test]
    fn a_version_1_file_migrates_and_keeps_its_judgments() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v1.sqlite");
        {
            // A file as version 1 wrote it: its tables and one judgment, no submissions.
            let mut conn = Connection::open(&path).unwrap();
            assert_eq!(migrate_to(&mut conn, &path, 1).unwrap(), 1);
            conn.execute_batch(
                "INSERT INTO study VALUES (1, 'old', 0, 'secret', 'v1');
                 INSERT INTO systems VALUES (1, 'A', ''), (2, 'B', '');
                 INSERT INTO items VALUES (1, 't', 'go', x'00', NULL);
                 INSERT INTO candidates VALUES (1, 1, x'00'), (1, 2, x'00');
                 INSERT INTO raters VALUES (1, 'r', 'tok', 5, 0);
                 INSERT INTO judgments VALUES (1, 1, '[2,1]', 2, 1, 700, 1, 123);",
            )
            .unwrap();
        }
        // Read only, an old study is refused with the way to migrate it, and left as it was.
        let before = std::fs::read(&path).unwrap();
        let e = Study::open_to_read(&path).err().unwrap().to_string();
        assert!(e.contains("older") && e.contains("study serve"), "{e}");
        assert_eq!(std::fs::read(&path).unwrap(), before);
        let study = Study::open(&path).unwrap();
        let version: u32 = Connection::open(&path)
            .unwrap()
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, VERSION);
        let j = study.judgments().unwrap();
        assert_eq!((j.len(), j[0].best, j[0].shown.clone()), (1, 2, vec![2, 1]));
        // The old judgment became the first submission; the item has no scene states.
        assert_eq!(study.submissions().unwrap(), 1);
        assert_eq!(study.sidecar(1).unwrap(), None);
        // Opening again applies nothing twice.
        drop(study);
        assert_eq!(Study::open(&path).unwrap().submissions().unwrap(), 1);
        // Migrated, it reads without a write: the same answers, the file's bytes unchanged.
        let before = std::fs::read(&path).unwrap();
        let read = Study::open_to_read(&path).unwrap();
        assert_eq!(read.submissions().unwrap(), 1);
        assert!(
            read.add_rater("x").is_err(),
            "a study opened to read took a write"
        );
        drop(read);
        assert_eq!(std::fs::read(&path).unwrap(), before);
    }

    #[test]
    fn files_that_are_not_studies_are_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let newer = dir.path().join("newer.sqlite");
        drop(small_study(&newer, 1));
        Connection::open(&newer)
            .unwrap()
            .pragma_update(None, "user_version", VERSION + 1)
            .unwrap();
        let e = Study::open(&newer).err().unwrap().to_string();
        assert!(
            e.contains("newer dynaboot") && e.contains("newer.sqlite"),
            "{e}"
        );

        let other = dir.path().join("other.sqlite");
        Connection::open(&other)
            .unwrap()
            .execute_batch("CREATE TABLE t (x)")
            .unwrap();
        let e = Study::open(&other).err().unwrap().to_string();
        assert!(e.contains("not a dynaboot study"), "{e}");

        // An empty file is not made a study: refused, and left as it was (0 bytes).
        let empty = dir.path().join("empty.sqlite");
        std::fs::write(&empty, b"").unwrap();
        let e = Study::open(&empty).err().unwrap().to_string();
        assert!(
            e.contains("not a dynaboot study") && e.contains("empty"),
            "{e}"
        );
        let e = Study::open_to_read(&empty).err().unwrap().to_string();
        assert!(e.contains("not a dynaboot study"), "{e}");
        assert_eq!(std::fs::metadata(&empty).unwrap().len(), 0);
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.starts_with("empty"))
            .collect();
        assert_eq!(leftovers, ["empty.sqlite"]);

        let text = dir.path().join("notes.txt");
        std::fs::write(&text, "these are not the tables you are looking for").unwrap();
        let before = std::fs::read(&text).unwrap();
        let e = Study::open(&text).err().unwrap().to_string();
        assert!(e.contains("not an SQLite database"), "{e}");
        assert_eq!(std::fs::read(&text).unwrap(), before);

        let e = Study::open(&dir.path().join("missing.sqlite"))
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("study create"), "{e}");
    }
}
