//! DVC's content hashes: md5 of a file's bytes, the legacy 2.x `md5-dos2unix`, and the `.dir` listing of a
//! directory, serialized byte for byte as DVC serializes it so both tools compute the same ids.

use std::fmt;
use std::io::{self, Read};
use std::path::Path;

use md5::{Digest, Md5};

/// Which hash an output's value was computed with. DVC 3 writes `hash: md5`; a `.dvc` file without that key
/// is a 2.x file whose values are `md5-dos2unix` and whose objects live at the legacy cache location.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HashKind {
    Md5,
    LegacyMd5Dos2Unix,
}

/// A content id as DVC names it: 32 hex digits, with `.dir` appended for a directory listing.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Oid {
    pub kind: HashKind,
    pub value: String,
}

impl Oid {
    pub fn new(kind: HashKind, value: impl Into<String>) -> Oid {
        Oid {
            kind,
            value: value.into(),
        }
    }

    pub fn is_dir(&self) -> bool {
        self.value.ends_with(".dir")
    }

    /// The md5 digits without the `.dir` suffix.
    pub fn digest(&self) -> &str {
        self.value.strip_suffix(".dir").unwrap_or(&self.value)
    }

    /// Whether the value has the shape DVC accepts (so it can safely name a path in a cache or remote).
    pub fn is_well_formed(value: &str) -> bool {
        let hex = value.strip_suffix(".dir").unwrap_or(value);
        hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    }

    /// The object's path below an object database root: `files/md5/ab/cdef…` for DVC 3, `ab/cdef…` for 2.x.
    pub fn relpath(&self) -> String {
        let (head, tail) = self.value.split_at(2);
        match self.kind {
            HashKind::Md5 => format!("files/md5/{head}/{tail}"),
            HashKind::LegacyMd5Dos2Unix => format!("{head}/{tail}"),
        }
    }
}

impl fmt::Display for Oid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.value)
    }
}

/// Read size for hashing: large enough that system calls do not dominate, small enough to stay in cache.
pub const CHUNK: usize = 1 << 20;

/// md5 of everything `reader` yields, and the byte count.
pub fn md5_reader(mut reader: impl Read) -> io::Result<(String, u64)> {
    let mut hasher = Md5::new();
    let mut buf = vec![0u8; CHUNK];
    let mut total = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        total += n as u64;
    }
    Ok((hex::encode(hasher.finalize()), total))
}

pub fn md5_bytes(bytes: &[u8]) -> String {
    hex::encode(Md5::digest(bytes))
}

/// Hashes a file with the given kind.
pub fn hash_file(path: &Path, kind: HashKind) -> io::Result<(String, u64)> {
    let file = std::fs::File::open(path)?;
    match kind {
        HashKind::Md5 => md5_reader(file),
        HashKind::LegacyMd5Dos2Unix => md5_dos2unix_reader(file),
    }
}

/// DVC 2.x's `md5-dos2unix`: the file is read in 1 MiB chunks; a chunk that looks like text has its CRLFs
/// turned into LFs before hashing. The size is the raw size on disk.
pub fn md5_dos2unix_reader(mut reader: impl Read) -> io::Result<(String, u64)> {
    let mut hasher = Md5::new();
    let mut buf = vec![0u8; CHUNK];
    let mut total = 0u64;
    loop {
        // Fill the whole chunk (DVC reads exactly 1 MiB blocks, and text detection is per block).
        let mut filled = 0;
        while filled < CHUNK {
            match reader.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        if filled == 0 {
            break;
        }
        total += filled as u64;
        let chunk = &buf[..filled];
        if is_text_block(chunk) {
            hasher.update(dos2unix(chunk));
        } else {
            hasher.update(chunk);
        }
        if filled < CHUNK {
            break;
        }
    }
    Ok((hex::encode(hasher.finalize()), total))
}

/// DVC's `istextblock`: the first 512 bytes hold no NUL and at most 30 % bytes outside printable ASCII and
/// the usual whitespace controls.
fn is_text_block(block: &[u8]) -> bool {
    let head = &block[..block.len().min(512)];
    if head.is_empty() {
        return true;
    }
    if head.contains(&0) {
        return false;
    }
    let non_text = head
        .iter()
        .filter(|&&b| !((32..=126).contains(&b) || b"\n\r\t\x0c\x08".contains(&b)))
        .count();
    non_text * 10 <= head.len() * 3
}

fn dos2unix(chunk: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(chunk.len());
    let mut i = 0;
    while i < chunk.len() {
        if chunk[i] == b'\r' && chunk.get(i + 1) == Some(&b'\n') {
            i += 1;
            continue;
        }
        out.push(chunk[i]);
        i += 1;
    }
    out
}

/// One file of a directory listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirEntry {
    /// Path inside the directory, `/`-separated.
    pub relpath: String,
    pub md5: String,
}

/// The bytes of a `.dir` object: the entries sorted by relpath, written as Python's
/// `json.dumps(entries, sort_keys=True)` writes them (`", "` and `": "` separators, non-ASCII escaped).
pub fn dir_listing_bytes(entries: &mut [DirEntry]) -> Vec<u8> {
    entries.sort_by(|a, b| a.relpath.cmp(&b.relpath));
    let mut out = String::with_capacity(entries.len() * 64 + 2);
    out.push('[');
    for (i, e) in entries.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str("{\"md5\": ");
        push_json_ascii(&mut out, &e.md5);
        out.push_str(", \"relpath\": ");
        push_json_ascii(&mut out, &e.relpath);
        out.push('}');
    }
    out.push(']');
    out.into_bytes()
}

/// The `.dir` id of a listing: md5 of its bytes with the `.dir` suffix.
pub fn dir_oid(listing: &[u8]) -> String {
    format!("{}.dir", md5_bytes(listing))
}

pub use orchard_yaml::python::push_json_ascii;


/// Reads a `.dir` object back. DVC's readers accept any JSON list of objects with `md5` and `relpath`; so does
/// this one, and anything else is refused rather than guessed at.
pub fn parse_dir_listing(bytes: &[u8]) -> Result<Vec<DirEntry>, String> {
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| format!("not JSON: {e}"))?;
    let items = value.as_array().ok_or("not a JSON list")?;
    let mut entries = Vec::with_capacity(items.len());
    for item in items {
        let md5 = item
            .get("md5")
            .and_then(|v| v.as_str())
            .ok_or("an entry has no md5")?;
        let relpath = item
            .get("relpath")
            .and_then(|v| v.as_str())
            .ok_or("an entry has no relpath")?;
        if !Oid::is_well_formed(md5) || md5.ends_with(".dir") {
            return Err(format!("bad md5 '{md5}'"));
        }
        if relpath.is_empty()
            || relpath.starts_with('/')
            || relpath.split('/').any(|p| p.is_empty() || p == "." || p == "..")
            || relpath.contains('\0')
        {
            return Err(format!("unsafe relpath '{relpath}'"));
        }
        entries.push(DirEntry {
            relpath: relpath.to_string(),
            md5: md5.to_string(),
        });
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn empty_directory_has_dvcs_id() {
        let bytes = dir_listing_bytes(&mut []);
        assert_eq!(bytes, b"[]");
        assert_eq!(dir_oid(&bytes), "d751713988987e9331980363e24189ce.dir");
    }

    #[test]
    fn listing_is_sorted_and_escaped_like_python() {
        let mut entries = vec![
            DirEntry {
                relpath: "\u{1F600}.txt".into(),
                md5: "b".repeat(32),
            },
            DirEntry {
                relpath: "a/caf\u{e9}".into(),
                md5: "a".repeat(32),
            },
        ];
        let text = String::from_utf8(dir_listing_bytes(&mut entries)).unwrap();
        assert_eq!(
            text,
            format!(
                "[{{\"md5\": \"{}\", \"relpath\": \"a/caf\\u00e9\"}}, {{\"md5\": \"{}\", \"relpath\": \"\\ud83d\\ude00.txt\"}}]",
                "a".repeat(32),
                "b".repeat(32)
            )
        );
    }

    #[test]
    fn dos2unix_only_touches_text() {
        let (crlf, _) = md5_dos2unix_reader(&b"a\r\nb\r\n"[..]).unwrap();
        let (lf, _) = md5_reader(&b"a\nb\n"[..]).unwrap();
        assert_eq!(crlf, lf);
        let binary = b"\0\r\n";
        assert_eq!(
            md5_dos2unix_reader(&binary[..]).unwrap().0,
            md5_reader(&binary[..]).unwrap().0
        );
    }

    #[test]
    fn oid_paths() {
        let oid = Oid::new(HashKind::Md5, "d751713988987e9331980363e24189ce.dir");
        assert_eq!(oid.relpath(), "files/md5/d7/51713988987e9331980363e24189ce.dir");
        let legacy = Oid::new(HashKind::LegacyMd5Dos2Unix, "d751713988987e9331980363e24189ce");
        assert_eq!(legacy.relpath(), "d7/51713988987e9331980363e24189ce");
    }

    proptest! {
        // What we write, serde_json reads back to the same entries (so the escaping is valid JSON).
        #[test]
        fn listing_round_trips(names in proptest::collection::btree_set("[a-zA-Z0-9 _.\u{e9}\u{4e2d}\u{1F600}\"\\\\\t-]{1,12}", 0..8)) {
            let mut entries: Vec<DirEntry> = names.iter().map(|n| DirEntry { relpath: format!("d/{n}"), md5: "0".repeat(32) }).collect();
            let bytes = dir_listing_bytes(&mut entries);
            prop_assert!(bytes.is_ascii());
            let back = parse_dir_listing(&bytes);
            if names.iter().any(|n| n == "." || n == "..") {
                prop_assert!(back.is_err());
            } else {
                prop_assert_eq!(back.unwrap(), entries);
            }
        }

        #[test]
        fn dir_parser_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse_dir_listing(&bytes);
        }
    }
}
