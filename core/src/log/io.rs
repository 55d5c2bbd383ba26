//! The I/O seam for everything that matters for durability.
//!
//! Segment files are opened through a [`Storage`] so that tests can inject the failures a
//! disk really produces (`ENOSPC` on write, `EIO` on fsync) and check that the log reacts as
//! its contract says: a failed write is rolled back and reported, a failed fsync poisons the
//! partition. [`OsStorage`] is the real thing.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

/// A file the log reads and appends to.
pub trait StorageFile: Send + Sync {
    /// Reads up to `buf.len()` bytes at `position`; returns how many were read (0 at EOF).
    fn read_at(&self, buf: &mut [u8], position: u64) -> io::Result<usize>;
    /// Writes all of `buf` at `position`.
    fn write_all_at(&self, buf: &[u8], position: u64) -> io::Result<()>;
    /// Flushes the file's data (and the metadata needed to read it) to stable storage.
    fn sync_data(&self) -> io::Result<()>;
    /// Truncates or extends the file to `len` bytes.
    fn set_len(&self, len: u64) -> io::Result<()>;
    /// Current size in bytes.
    fn len(&self) -> io::Result<u64>;
    /// Whether the file is empty.
    fn is_empty(&self) -> io::Result<bool> {
        Ok(self.len()? == 0)
    }
}

/// Opens segment files and syncs directories.
pub trait Storage: Send + Sync + std::fmt::Debug {
    /// Opens `path` for reading and writing, creating it if `create`.
    fn open(&self, path: &Path, create: bool) -> io::Result<Arc<dyn StorageFile>>;
    /// Makes the directory's entries (created, renamed, removed files) durable.
    fn sync_dir(&self, path: &Path) -> io::Result<()>;
}

/// The operating system's file system.
#[derive(Debug, Default, Clone, Copy)]
pub struct OsStorage;

struct OsFile(File);

impl StorageFile for OsFile {
    fn read_at(&self, buf: &mut [u8], position: u64) -> io::Result<usize> {
        self.0.read_at(buf, position)
    }
    fn write_all_at(&self, buf: &[u8], position: u64) -> io::Result<()> {
        self.0.write_all_at(buf, position)
    }
    fn sync_data(&self) -> io::Result<()> {
        self.0.sync_data()
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }
    fn len(&self) -> io::Result<u64> {
        Ok(self.0.metadata()?.len())
    }
}

impl Storage for OsStorage {
    fn open(&self, path: &Path, create: bool) -> io::Result<Arc<dyn StorageFile>> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(create)
            .truncate(false)
            .open(path)?;
        Ok(Arc::new(OsFile(file)))
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        File::open(path)?.sync_all()
    }
}

/// Reads exactly `buf.len()` bytes at `position`, or fails with `UnexpectedEof`.
pub(crate) fn read_exact_at(
    file: &dyn StorageFile,
    buf: &mut [u8],
    position: u64,
) -> io::Result<()> {
    let mut done = 0;
    while done < buf.len() {
        let n = file.read_at(&mut buf[done..], position + done as u64)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("file ends before byte {}", position + buf.len() as u64),
            ));
        }
        done += n;
    }
    Ok(())
}

/// Writes a small file atomically: to a temporary sibling, fsynced, renamed over the target,
/// then the directory fsynced. Readers see the old contents or the new, never a mix.
pub(crate) fn write_atomic(storage: &dyn Storage, path: &Path, contents: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let file = storage.open(&tmp, true)?;
        file.set_len(0)?;
        file.write_all_at(contents, 0)?;
        file.sync_data()?;
    }
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        storage.sync_dir(dir)?;
    }
    Ok(())
}
