//! A study's SQLite file: create it atomically, open it (migrating older versions), add raters
//! and record their judgments, each submission one transaction.

use super::schema::{VERSION, migrate, study_error, study_version};
use crate::data::Sidecar;
use crate::error::{Error, Result};
use crate::png::png_bytes;
use image::RgbImage;
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use std::path::{Path, PathBuf};

/// One compared system (a checkpoint with or without a verifier, or "copy the source").
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct System {
    /// Its row id.
    pub id: i64,
    /// Its short name (shown in reports).
    pub name: String,
    pub(crate) description: String,
}

/// One item: a source image and an action, with one candidate per system.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Item {
    /// Its row id.
    pub id: i64,
    /// The action's family (`kubric`, ...).
    #[serde(rename = "task")] // AURORA calls a family a task
    pub family: String,
    /// The action in words.
    pub instruction: String,
}

/// A rater and the token in their link.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Rater {
    pub(crate) id: i64,
    /// The rater's name.
    pub name: String,
    /// The secret in the rater's link.
    pub token: String,
    /// Seeds the rater's item order and candidate shuffles.
    pub(crate) seed: u64,
}

/// The judgment that counts for one rater and item (the last one submitted).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Judgment {
    pub(crate) rater: i64,
    pub(crate) item: i64,
    /// System ids in the order their candidates were shown.
    pub(crate) shown: Vec<i64>,
    pub(crate) best: i64,
    pub(crate) worst: i64,
    /// Time spent on the item, milliseconds.
    pub(crate) ms: i64,
    /// How many times it was submitted (1 = never changed).
    pub(crate) revisions: i64,
}

/// What the study file says about itself.
#[derive(Clone, Debug, serde::Serialize)]
pub struct StudyInfo {
    pub(crate) name: String,
    pub(crate) source: String,
    pub(crate) created_ms: i64,
    /// Items stored.
    pub items: usize,
    /// The compared systems, in the order candidates were stored.
    pub systems: Vec<System>,
    pub(crate) raters: usize,
    /// Judgments that count (one per rater and item).
    pub judgments: usize,
}

/// An item to store: the candidates in the order of the systems given to [`Study::create`].
pub struct NewItem {
    pub(crate) family: String,
    pub(crate) instruction: String,
    pub(crate) source: RgbImage,
    /// The true next image, shown only in the report.
    pub(crate) target: Option<RgbImage>,
    /// Scene states (the embedded world's rows), for the exact judge.
    pub(crate) sidecar: Option<Sidecar>,
    pub(crate) candidates: Vec<RgbImage>,
}

/// Which image of an item.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Image {
    /// The item's source image.
    Source,
    /// The true next image (where the data had one).
    Target,
    /// The candidate of the system with this id.
    Candidate(i64),
}

/// An open study file.
pub struct Study {
    conn: Connection,
    path: PathBuf,
}

/// 32 hex digits from the operating system's random source.
pub(crate) fn random_token() -> String {
    use rand::TryRngCore;
    let mut bytes = [0u8; 16];
    rand::rngs::OsRng
        .try_fill_bytes(&mut bytes)
        .expect("the operating system's random source works");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl Study {
    /// Opens `path`, checks it is a study of a version this build reads, migrates it, and only
    /// then switches it to write-ahead logging (a file that is not a study is left untouched).
    fn connect(path: &Path) -> Result<Connection> {
        let mut conn = Connection::open(path).map_err(|e| study_error(path, e))?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(|e| study_error(path, e))?;
        study_version(&conn, path)?;
        migrate(&mut conn, path)?;
        // WAL: readers never block the writer; FULL: a committed judgment survives a killed
        // server and a power cut; a second writer waits up to 5 s instead of failing.
        conn.pragma_update(None, "journal_mode", "WAL")
            .and_then(|_| conn.pragma_update(None, "synchronous", "FULL"))
            .and_then(|_| conn.pragma_update(None, "foreign_keys", "ON"))
            .map_err(|e| study_error(path, e))?;
        Ok(conn)
    }

    fn err(&self, e: impl std::fmt::Display) -> Error {
        study_error(&self.path, e)
    }

    /// Opens an existing study, migrating it to this version's schema.
    pub fn open(path: &Path) -> Result<Study> {
        Self::check_file(path)?;
        let conn = Self::connect(path)?;
        Ok(Study {
            conn,
            path: path.to_path_buf(),
        })
    }

    /// Opens an existing study only to read it (a report): nothing is written, so a study the
    /// user may not write (a read-only file or folder) opens too. A study of an older schema
    /// must be opened once by a command that writes (`study serve`, `study rater`) to migrate.
    pub fn open_to_read(path: &Path) -> Result<Study> {
        Self::check_file(path)?;
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags).map_err(|e| study_error(path, e))?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(|e| study_error(path, e))?;
        let version = study_version(&conn, path).map_err(|e| match e {
            // SQLite reads a study in write-ahead-log mode only beside its `-shm` file, which
            // it must be able to create where the study cannot be written.
            Error::Study { message, .. } if message.contains("unable to open") => study_error(
                path,
                "cannot be read here: SQLite needs to write its shared-memory file (-shm) \
                 beside a study in write-ahead-log mode; copy the study to a writable folder",
            ),
            e => e,
        })?;
        if version < VERSION {
            return Err(study_error(
                path,
                format!(
                    "schema version {version} is older than this dynaboot's ({VERSION}); open \
                     it once with `dynaboot study serve` or `study rater`, which migrate it"
                ),
            ));
        }
        Ok(Study {
            conn,
            path: path.to_path_buf(),
        })
    }

    fn check_file(path: &Path) -> Result<()> {
        match path.is_file() {
            true => Ok(()),
            false => Err(study_error(
                path,
                "no such file; make one with `dynaboot study create`",
            )),
        }
    }

    /// Writes a new study to `path`: built in a temporary file beside it and renamed into
    /// place once complete, so a failure leaves nothing half-written. Refuses an existing file.
    pub fn create(
        path: &Path,
        name: &str,
        source: &str,
        systems: &[(String, String)],
        items: impl IntoIterator<Item = Result<NewItem>>,
    ) -> Result<Study> {
        if path.exists() {
            return Err(study_error(
                path,
                "already exists; choose another file or remove it first",
            ));
        }
        for (system, _) in systems {
            check_name("system", system).map_err(|m| study_error(path, m))?;
        }
        if systems.len() < 2 {
            return Err(study_error(
                path,
                format!(
                    "a study compares 2 or more systems (best and worst differ), got {}",
                    systems.len()
                ),
            ));
        }
        let dir = path.parent().filter(|p| !p.as_os_str().is_empty());
        let dir = dir.unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let tmp = dir.join(format!(
            ".{}.tmp-{}",
            path.file_name().and_then(|n| n.to_str()).unwrap_or("study"),
            std::process::id()
        ));
        let _ = std::fs::remove_file(&tmp);
        let result = Self::fill(&tmp, name, source, systems, items);
        if let Err(e) = result {
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", tmp.display()));
            }
            return Err(e);
        }
        std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))?;
        Study::open(path)
    }

    fn fill(
        tmp: &Path,
        name: &str,
        source: &str,
        systems: &[(String, String)],
        items: impl IntoIterator<Item = Result<NewItem>>,
    ) -> Result<()> {
        let mut conn = Connection::open(tmp).map_err(|e| study_error(tmp, e))?;
        migrate(&mut conn, tmp)?;
        let err = |e: rusqlite::Error| study_error(tmp, e);
        let tx = conn.transaction().map_err(err)?;
        tx.execute(
            "INSERT INTO study (id, name, created_ms, secret, source) VALUES (1, ?1, ?2, ?3, ?4)",
            params![name, now_ms(), random_token(), source],
        )
        .map_err(err)?;
        let mut ids = Vec::new();
        for (n, d) in systems {
            tx.execute(
                "INSERT INTO systems (name, description) VALUES (?1, ?2)",
                params![n, d],
            )
            .map_err(|e| study_error(tmp, format!("system \"{n}\": {e}")))?;
            ids.push(tx.last_insert_rowid());
        }
        let mut count = 0;
        for item in items {
            let item = item?;
            if item.candidates.len() != systems.len() {
                return Err(study_error(
                    tmp,
                    format!(
                        "item \"{}\" has {} candidates for {} systems",
                        item.instruction,
                        item.candidates.len(),
                        systems.len()
                    ),
                ));
            }
            let target = item.target.as_ref().map(png_bytes).transpose()?;
            let sidecar = item
                .sidecar
                .as_ref()
                .map(|s| serde_json::to_string(s).expect("scene states serialise"));
            tx.execute(
                "INSERT INTO items (task, instruction, source_png, target_png, sidecar)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    item.family,
                    item.instruction,
                    png_bytes(&item.source)?,
                    target,
                    sidecar
                ],
            )
            .map_err(err)?;
            let id = tx.last_insert_rowid();
            for (system, image) in ids.iter().zip(&item.candidates) {
                tx.execute(
                    "INSERT INTO candidates (item, system, png) VALUES (?1, ?2, ?3)",
                    params![id, system, png_bytes(image)?],
                )
                .map_err(err)?;
            }
            count += 1;
        }
        if count == 0 {
            return Err(study_error(tmp, "no items: the data folder gave no rows"));
        }
        tx.commit().map_err(err)?;
        // One file: fold the write-ahead log in before the rename.
        conn.pragma_update(None, "journal_mode", "DELETE")
            .map_err(err)?;
        Ok(())
    }

    /// The study file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The study's secret: required in every link when the server is reachable beyond this
    /// machine.
    pub fn secret(&self) -> Result<String> {
        self.conn
            .query_row("SELECT secret FROM study", [], |r| r.get(0))
            .map_err(|e| self.err(e))
    }

    /// The study's name, source, size and progress.
    pub fn info(&self) -> Result<StudyInfo> {
        let (name, source, created_ms) = self
            .conn
            .query_row("SELECT name, source, created_ms FROM study", [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .map_err(|e| self.err(e))?;
        let count = |table: &str| -> Result<usize> {
            self.conn
                .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| {
                    r.get::<_, i64>(0)
                })
                .map(|n| n as usize)
                .map_err(|e| self.err(e))
        };
        Ok(StudyInfo {
            name,
            source,
            created_ms,
            items: count("items")?,
            systems: self.systems()?,
            raters: count("raters")?,
            judgments: count("judgments")?,
        })
    }

    pub(crate) fn systems(&self) -> Result<Vec<System>> {
        let mut st = self
            .conn
            .prepare("SELECT id, name, description FROM systems ORDER BY id")
            .map_err(|e| self.err(e))?;
        st.query_map([], |r| {
            Ok(System {
                id: r.get(0)?,
                name: r.get(1)?,
                description: r.get(2)?,
            })
        })
        .and_then(|rows| rows.collect())
        .map_err(|e| self.err(e))
    }

    /// Every item, in id order.
    pub fn items(&self) -> Result<Vec<Item>> {
        let mut st = self
            .conn
            .prepare("SELECT id, task, instruction FROM items ORDER BY id")
            .map_err(|e| self.err(e))?;
        st.query_map([], |r| {
            Ok(Item {
                id: r.get(0)?,
                family: r.get(1)?,
                instruction: r.get(2)?,
            })
        })
        .and_then(|rows| rows.collect())
        .map_err(|e| self.err(e))
    }

    /// PNG bytes of one image of an item; `None` if there is no such image.
    pub fn image(&self, item: i64, which: Image) -> Result<Option<Vec<u8>>> {
        let row = match which {
            Image::Source => {
                self.conn
                    .query_row("SELECT source_png FROM items WHERE id = ?1", [item], |r| {
                        r.get::<_, Vec<u8>>(0)
                    })
            }
            Image::Target => self.conn.query_row(
                "SELECT target_png FROM items WHERE id = ?1 AND target_png IS NOT NULL",
                [item],
                |r| r.get::<_, Vec<u8>>(0),
            ),
            Image::Candidate(system) => self.conn.query_row(
                "SELECT png FROM candidates WHERE item = ?1 AND system = ?2",
                [item, system],
                |r| r.get::<_, Vec<u8>>(0),
            ),
        };
        row.optional().map_err(|e| self.err(e))
    }

    /// The scene states of an item from the embedded world (`None` for other data).
    pub(crate) fn sidecar(&self, item: i64) -> Result<Option<Sidecar>> {
        let text: Option<String> = self
            .conn
            .query_row("SELECT sidecar FROM items WHERE id = ?1", [item], |r| {
                r.get(0)
            })
            .optional()
            .map_err(|e| self.err(e))?
            .flatten();
        text.map(|t| {
            serde_json::from_str(&t)
                .map_err(|e| self.err(format!("item {item}: its scene states do not parse ({e})")))
        })
        .transpose()
    }

    /// Adds a rater with a fresh token and seed.
    pub fn add_rater(&self, name: &str) -> Result<Rater> {
        let name = name.trim();
        check_name("rater", name).map_err(|m| self.err(m))?;
        let token = random_token();
        let seed = u64::from_str_radix(&token[..16], 16).expect("hex");
        self.conn
            .execute(
                "INSERT INTO raters (name, token, seed, created_ms) VALUES (?1, ?2, ?3, ?4)",
                params![name, token, seed as i64, now_ms()],
            )
            .map_err(|e| match e {
                rusqlite::Error::SqliteFailure(f, _)
                    if f.code == rusqlite::ErrorCode::ConstraintViolation =>
                {
                    self.err(format!("a rater named \"{name}\" exists already"))
                }
                e => self.err(e),
            })?;
        Ok(Rater {
            id: self.conn.last_insert_rowid(),
            name: name.to_string(),
            token,
            seed,
        })
    }

    /// Every rater, in id order.
    pub fn raters(&self) -> Result<Vec<Rater>> {
        let mut st = self
            .conn
            .prepare("SELECT id, name, token, seed FROM raters ORDER BY id")
            .map_err(|e| self.err(e))?;
        st.query_map([], |r| {
            Ok(Rater {
                id: r.get(0)?,
                name: r.get(1)?,
                token: r.get(2)?,
                seed: r.get::<_, i64>(3)? as u64,
            })
        })
        .and_then(|rows| rows.collect())
        .map_err(|e| self.err(e))
    }

    #[cfg(any(feature = "serve", test))]
    pub(crate) fn rater_by_token(&self, token: &str) -> Result<Option<Rater>> {
        Ok(self.raters()?.into_iter().find(|r| r.token == token))
    }

    /// Records `rater`'s judgment of `item` in one transaction: it replaces an earlier one of
    /// the same item (a resubmission of the same judgment changes nothing but the count) and
    /// is appended to the submissions. `shown` must be the item's systems in the order shown;
    /// best and worst two different ones of them.
    pub(crate) fn judge(
        &mut self,
        rater: i64,
        item: i64,
        shown: &[i64],
        best: i64,
        worst: i64,
        ms: i64,
    ) -> Result<Judgment> {
        let path = self.path.clone();
        let err = |e: rusqlite::Error| study_error(&path, e);
        // IMMEDIATE: take the write lock before the first read, so a second writer waits for it
        // (busy timeout) instead of failing when its read snapshot goes stale.
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(err)?;
        let mut systems: Vec<i64> = {
            let mut st = tx
                .prepare("SELECT system FROM candidates WHERE item = ?1 ORDER BY system")
                .map_err(err)?;
            st.query_map([item], |r| r.get(0))
                .and_then(|rows| rows.collect::<rusqlite::Result<Vec<i64>>>())
                .map_err(err)?
        };
        if systems.is_empty() {
            return Err(Error::NotFound(format!("item {item}: no such item")));
        }
        let mut sorted = shown.to_vec();
        sorted.sort_unstable();
        systems.sort_unstable();
        if sorted != systems {
            return Err(Error::Invalid(format!(
                "item {item}: `shown` must list its systems {systems:?} once each, got {shown:?}"
            )));
        }
        if best == worst || !systems.contains(&best) || !systems.contains(&worst) {
            return Err(Error::Invalid(format!(
                "item {item}: best ({best}) and worst ({worst}) must be two different systems \
                 of {systems:?}"
            )));
        }
        if !(0..=24 * 3_600_000).contains(&ms) {
            return Err(Error::Invalid(format!(
                "item {item}: time taken {ms} ms is outside 0 ms to 24 h"
            )));
        }
        let shown_json = serde_json::to_string(shown).expect("ids serialise");
        let now = now_ms();
        tx.execute(
            "INSERT INTO judgments (rater, item, shown, best, worst, ms, updated_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (rater, item) DO UPDATE SET shown = excluded.shown,
                 best = excluded.best, worst = excluded.worst, ms = excluded.ms,
                 revisions = revisions + 1, updated_ms = excluded.updated_ms",
            params![rater, item, shown_json, best, worst, ms, now],
        )
        .map_err(|e| match e {
            rusqlite::Error::SqliteFailure(f, _)
                if f.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                Error::Invalid(format!("rater {rater}: no such rater"))
            }
            e => err(e),
        })?;
        tx.execute(
            "INSERT INTO submissions (rater, item, best, worst, ms, at_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![rater, item, best, worst, ms, now],
        )
        .map_err(err)?;
        let revisions = tx
            .query_row(
                "SELECT revisions FROM judgments WHERE rater = ?1 AND item = ?2",
                [rater, item],
                |r| r.get(0),
            )
            .map_err(err)?;
        tx.commit().map_err(err)?;
        Ok(Judgment {
            rater,
            item,
            shown: shown.to_vec(),
            best,
            worst,
            ms,
            revisions,
        })
    }

    /// Every judgment that counts, by rater then item.
    pub(crate) fn judgments(&self) -> Result<Vec<Judgment>> {
        let mut st = self
            .conn
            .prepare(
                "SELECT rater, item, shown, best, worst, ms, revisions FROM judgments
                 ORDER BY rater, item",
            )
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map([], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, i64>(4)?,
                    r.get::<_, i64>(5)?,
                    r.get::<_, i64>(6)?,
                ))
            })
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(|e| self.err(e))?;
        rows.into_iter()
            .map(|(rater, item, shown, best, worst, ms, revisions)| {
                let shown = serde_json::from_str(&shown).map_err(|e| {
                    self.err(format!(
                        "judgment of rater {rater}, item {item}: `shown` is not a list of ids ({e})"
                    ))
                })?;
                Ok(Judgment {
                    rater,
                    item,
                    shown,
                    best,
                    worst,
                    ms,
                    revisions,
                })
            })
            .collect()
    }

    /// How many submissions were made in all (changes of mind included).
    pub(crate) fn submissions(&self) -> Result<usize> {
        self.conn
            .query_row("SELECT count(*) FROM submissions", [], |r| {
                r.get::<_, i64>(0)
            })
            .map(|n| n as usize)
            .map_err(|e| self.err(e))
    }
}

/// A rater's or a system's name as reports print it: 1 to 100 characters, none of them a
/// control character or `|` (the reports' tables are Markdown).
fn check_name(kind: &str, name: &str) -> std::result::Result<(), String> {
    let chars = name.chars().count();
    if !(1..=100).contains(&chars) {
        return Err(format!(
            "{kind} name {name:?}: give 1 to 100 characters (it has {chars})"
        ));
    }
    if let Some(c) = name.chars().find(|c| c.is_control() || *c == '|') {
        return Err(format!(
            "{kind} name {name:?}: {c:?} cannot be in a name (the report prints names in \
             tables): choose another"
        ));
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn names_are_counted_in_characters_and_keep_the_tables_whole() {
        assert!(
            check_name("rater", &"é".repeat(100)).is_ok(),
            "200 bytes, 100 characters"
        );
        let e = check_name("rater", &"é".repeat(101)).unwrap_err();
        assert!(e.contains("(it has 101)"), "{e}");
        let e = check_name("system", "a|b").unwrap_err();
        assert!(e.contains("'|'") && e.contains("system name"), "{e}");
        assert!(check_name("rater", "line\nbreak").is_err());
        assert!(check_name("rater", "").is_err());
    }

    pub(crate) fn pixel(v: u8) -> RgbImage {
        RgbImage::from_pixel(4, 4, image::Rgb([v, v, v]))
    }

    /// A study of `items` items with systems A, B, C.
    pub(crate) fn small_study(path: &Path, items: usize) -> Study {
        let systems: Vec<(String, String)> = ["A", "B", "C"]
            .iter()
            .map(|s| (s.to_string(), format!("system {s}")))
            .collect();
        let items = (0..items).map(|i| {
            Ok(NewItem {
                family: if i % 2 == 0 { "even" } else { "odd" }.into(),
                instruction: format!("action {i}"),
                source: pixel(i as u8),
                target: Some(pixel(100)),
                sidecar: None,
                candidates: vec![pixel(1), pixel(2), pixel(3)],
            })
        });
        Study::create(path, "test", "unit test", &systems, items).unwrap()
    }

    #[test]
    fn a_study_is_created_whole_or_not_at_all() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sqlite");
        let study = small_study(&path, 4);
        let info = study.info().unwrap();
        assert_eq!((info.items, info.raters, info.judgments), (4, 0, 0));
        assert_eq!(info.systems.len(), 3);
        let png = study.image(1, Image::Candidate(2)).unwrap().unwrap();
        assert_eq!(image::load_from_memory(&png).unwrap().to_rgb8(), pixel(2));
        assert!(study.image(1, Image::Candidate(9)).unwrap().is_none());
        assert_eq!(study.secret().unwrap().len(), 32);

        // An existing file is never overwritten.
        let before = std::fs::read(&path).unwrap();
        let e = Study::create(&path, "x", "y", &[], std::iter::empty())
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("already exists"), "{e}");
        assert_eq!(std::fs::read(&path).unwrap(), before);

        // A failure half-way leaves no file and no temporary behind.
        let other = dir.path().join("t.sqlite");
        let systems = vec![("A".into(), "".into()), ("B".into(), "".into())];
        let bad = (0..3).map(|i| {
            Ok(NewItem {
                family: "t".into(),
                instruction: format!("{i}"),
                source: pixel(0),
                target: None,
                sidecar: None,
                candidates: vec![pixel(0); if i == 2 { 1 } else { 2 }],
            })
        });
        let e = Study::create(&other, "x", "y", &systems, bad)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("1 candidates for 2 systems"), "{e}");
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| !n.starts_with("s.sqlite"))
            .collect();
        assert!(left.is_empty(), "{left:?}");
        let e = Study::create(&other, "x", "y", &systems[..1], std::iter::empty())
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("2 or more systems"), "{e}");
    }

    #[test]
    fn judgments_are_checked_and_a_resubmission_counts_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut study = small_study(&dir.path().join("s.sqlite"), 3);
        let alice = study.add_rater("alice").unwrap();
        assert!(
            study
                .add_rater("alice")
                .unwrap_err()
                .to_string()
                .contains("exists already")
        );
        assert_eq!(
            study.rater_by_token(&alice.token).unwrap(),
            Some(alice.clone())
        );
        assert_eq!(study.rater_by_token("nope").unwrap(), None);

        let j = study.judge(alice.id, 1, &[3, 1, 2], 1, 2, 1500).unwrap();
        assert_eq!(j.revisions, 1);
        // The same again (a browser that resubmits), then a change of mind.
        study.judge(alice.id, 1, &[3, 1, 2], 1, 2, 1500).unwrap();
        let j = study.judge(alice.id, 1, &[3, 1, 2], 3, 2, 900).unwrap();
        assert_eq!(j.revisions, 3);
        let all = study.judgments().unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!((all[0].best, all[0].worst, all[0].ms), (3, 2, 900));
        assert_eq!(study.submissions().unwrap(), 3);

        for (shown, best, worst, item, want) in [
            (vec![1, 2, 3], 2, 2, 1, "two different systems"),
            (vec![1, 2, 4], 1, 2, 1, "once each"),
            (vec![1, 2], 1, 2, 1, "once each"),
            (vec![1, 2, 3], 1, 7, 1, "two different systems"),
            (vec![1, 2, 3], 1, 2, 99, "no such item"),
        ] {
            let e = study
                .judge(alice.id, item, &shown, best, worst, 10)
                .unwrap_err()
                .to_string();
            assert!(e.contains(want), "{shown:?} {best} {worst}: {e}");
        }
        let e = study
            .judge(42, 1, &[1, 2, 3], 1, 2, 10)
            .unwrap_err()
            .to_string();
        assert!(e.contains("no such rater"), "{e}");
        assert_eq!(study.judgments().unwrap().len(), 1);
        assert_eq!(study.submissions().unwrap(), 3);
    }

    #[test]
    fn two_writers_at_once_lose_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sqlite");
        let study = small_study(&path, 30);
        let raters = [study.add_rater("a").unwrap(), study.add_rater("b").unwrap()];
        drop(study);
        std::thread::scope(|s| {
            for r in &raters {
                let path = path.clone();
                s.spawn(move || {
                    let mut mine = Study::open(&path).unwrap();
                    for item in 1..=30 {
                        mine.judge(r.id, item, &[1, 2, 3], 1 + item % 3, 1 + (item + 1) % 3, 5)
                            .unwrap();
                    }
                });
            }
        });
        let study = Study::open(&path).unwrap();
        assert_eq!(study.judgments().unwrap().len(), 60);
        assert_eq!(study.submissions().unwrap(), 60);
    }
}
