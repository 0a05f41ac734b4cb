//! The one pass over a record's bytes: it checks the JSON as strictly as
//! `serde_json` does (every string, escape, number and literal; no control
//! characters in strings), finds where the record ends, and picks out on the
//! way what ghreplay needs: the envelope fields of every record shape and the
//! few payload facts the filters and the event inference use. Everything else
//! is stepped over without being parsed into anything, and payloads stay as
//! byte ranges.
//!
//! Hand-written because this is where the read path spends its time: a
//! general deserializer pays per token for what ghreplay throws away. Strings,
//! most of a webhook's bytes, are crossed eight bytes at a time (a SWAR test
//! for `"`, `\`, control characters and bytes above ASCII). Nesting is
//! followed with an explicit stack, so depth costs memory, never the call
//! stack. Agreement with `serde_json` on what is JSON, and where a document
//! ends, is a property test below.
//!
//! The same pass checks that the text is UTF-8, so that an object is read
//! once after it is decompressed: a string's bytes that are not ASCII, rare
//! in webhooks and absent from Mozilla's archives (Python's `json.dumps`
//! escapes them), stop the eight-byte crossing, and each run of them is
//! checked where it stands. Outside strings JSON allows ASCII only, which the
//! token checks already require. Text that is not UTF-8 does not stop the
//! pass: the record is read to its end and its first bad byte reported
//! ([`Record::not_utf8`]), so that the caller refuses that record alone.
//! A string is borrowed as `&str` only after checking it.

use std::borrow::Cow;
use std::fmt;
use std::ops::Range;

use super::infer::{AlertKind, Key, KeySet};
use crate::model::Private;

/// Why the bytes at `at` are not the JSON that was expected there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanError {
    pub at: usize,
    pub kind: ErrorKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The input ended inside a value.
    Eof,
    Expected(&'static str),
    ControlCharacter,
    InvalidEscape,
    InvalidNumber,
    /// A string the pass needed as text was not UTF-8, or its escapes name
    /// no character (a lone surrogate).
    BadString,
    /// A payload read on its own ([`payload`]) holds bytes that are not
    /// UTF-8.
    NotUtf8,
}

impl ScanError {
    #[must_use]
    pub fn is_eof(&self) -> bool {
        self.kind == ErrorKind::Eof
    }
}

impl fmt::Display for ScanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            ErrorKind::Eof => write!(f, "input ends inside a value at byte {}", self.at),
            ErrorKind::Expected(what) => write!(f, "expected {what} at byte {}", self.at),
            ErrorKind::ControlCharacter => {
                write!(f, "control character in a string at byte {}", self.at)
            }
            ErrorKind::InvalidEscape => write!(f, "invalid escape at byte {}", self.at),
            ErrorKind::InvalidNumber => write!(f, "invalid number at byte {}", self.at),
            ErrorKind::BadString => write!(f, "string is not valid text at byte {}", self.at),
            ErrorKind::NotUtf8 => write!(f, "not UTF-8 text at byte {}", self.at),
        }
    }
}

impl std::error::Error for ScanError {}

type Result<T> = std::result::Result<T, ScanError>;

/// What the `repository` key held.
#[derive(Debug, Default)]
pub struct Repository<'a> {
    /// The value was an object (a repository the event is about).
    pub is_object: bool,
    pub full_name: Option<Cow<'a, str>>,
    pub private: Private,
}

/// The payload facts of one payload object.
#[derive(Debug, Default)]
pub struct Facts<'a> {
    pub action: Option<Cow<'a, str>>,
    pub repository: Repository<'a>,
    /// `sender.login`.
    pub sender: Option<Cow<'a, str>>,
    pub alert: AlertKind,
    pub keys: KeySet,
}

/// What `body_crc32` held.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum Crc {
    /// Absent, or null.
    #[default]
    Absent,
    Value(u64),
    /// Anything but an integer that fits a `u64`.
    Bad,
}

/// Everything one pass over a record finds.
///
/// A record's own keys are read both as an envelope (Mozilla's and
/// ghreplay's shapes) and as a payload (the raw shape); where `body` holds an
/// object, its payload facts are read in the same pass.
#[derive(Debug, Default)]
pub struct Record<'a> {
    /// The `ghreplay` format version, raw: its presence marks our shape.
    pub version: Option<&'a str>,
    /// Where the value of `body` lies, and its facts when it is an object.
    pub body: Option<(Range<usize>, Option<Facts<'a>>)>,
    pub body_base64: Option<Cow<'a, str>>,
    pub body_crc32: Crc,
    pub event: Option<Cow<'a, str>>,
    pub request_id: Option<Cow<'a, str>>,
    pub delivery_id: Option<Cow<'a, str>>,
    pub received_at: Option<Cow<'a, str>>,
    /// The `headers` value, raw.
    pub headers: Option<&'a str>,
    /// The record read as a payload.
    pub facts: Facts<'a>,
    /// The byte after the record's closing brace.
    pub end: usize,
    /// Whether a raw line break (`\n` or `\r`) lies between its tokens (JSON
    /// allows none inside strings): without one, every part prints on one line
    /// as it is.
    pub line_breaks: bool,
    /// Where the first bytes that are not UTF-8 lie, if any do.
    pub not_utf8: Option<usize>,
}

/// Reads the record starting at `start` (its `{`, after any whitespace).
pub fn record(data: &[u8], start: usize) -> Result<Record<'_>> {
    let mut s = Scan::new(data, start);
    if s.peek() != Some(b'{') {
        return Err(s.error(ErrorKind::Expected("a JSON object")));
    }
    let mut r = Record::default();
    s.object(|s, key| {
        let start = s.value_start();
        match key {
            b"ghreplay" => r.version = Some(s.raw(start)?),
            b"body" => {
                let facts = if s.peek() == Some(b'{') {
                    Some(s.payload()?)
                } else {
                    s.skip_value()?;
                    None
                };
                r.body = Some((start..s.pos, facts));
            }
            b"body_base64" => r.body_base64 = s.loose_str()?,
            b"body_crc32" => r.body_crc32 = s.crc()?,
            b"event" => r.event = s.loose_str()?,
            b"request_id" => r.request_id = s.loose_str()?,
            b"delivery_id" => r.delivery_id = s.loose_str()?,
            b"received_at" => r.received_at = s.loose_str()?,
            b"headers" => r.headers = Some(s.raw(start)?),
            _ => return s.payload_key(&mut r.facts, key),
        }
        // Envelope keys are payload keys too, for the event inference.
        insert_key(&mut r.facts.keys, key);
        Ok(())
    })?;
    r.end = s.pos;
    r.line_breaks = s.line_breaks;
    r.not_utf8 = s.not_utf8;
    Ok(r)
}

/// Reads `text` as exactly one payload object (whitespace around it allowed).
pub fn payload(text: &[u8]) -> Result<Facts<'_>> {
    let mut s = Scan::new(text, 0);
    s.skip_ws();
    if s.peek() != Some(b'{') {
        return Err(s.error(ErrorKind::Expected("a JSON object")));
    }
    let facts = s.payload()?;
    s.skip_ws();
    if s.pos < text.len() {
        return Err(s.error(ErrorKind::Expected("the end of the payload")));
    }
    match s.not_utf8 {
        Some(at) => Err(s.error_at(at, ErrorKind::NotUtf8)),
        None => Ok(facts),
    }
}

/// Skips one JSON value starting at `start` (after whitespace); returns the
/// byte after it, and where the first bytes that are not UTF-8 lie.
#[cfg(test)]
pub fn skip_value(data: &[u8], start: usize) -> Result<(usize, Option<usize>)> {
    let mut s = Scan::new(data, start);
    s.skip_ws();
    s.skip_value()?;
    Ok((s.pos, s.not_utf8))
}

fn insert_key(keys: &mut KeySet, key: &[u8]) {
    if let Some(k) = Key::from_name(key) {
        keys.insert(k);
    }
}

struct Scan<'a> {
    data: &'a [u8],
    pos: usize,
    /// Open containers while skipping: `true` for an object.
    stack: Vec<bool>,
    /// A raw line break was crossed.
    line_breaks: bool,
    /// The first bytes that are not UTF-8.
    not_utf8: Option<usize>,
}

/// A byte of every lane of a `u64`.
const ONES: u64 = u64::MAX / 255;
const HIGHS: u64 = ONES << 7;

/// The high bit of each byte of `w` that is `"`, `\`, a control character or
/// not ASCII. Bytes above the first such byte may be flagged falsely (a
/// borrow), so only the lowest flag is meaningful.
///
/// The usual zero test, `(x - 1) & !x`, masks out bytes from 0x80 up; here
/// they are wanted, so the masks go. With no borrow from below, a byte `b`
/// under 0x80 gets a high bit from `(b ^ '"') - 1` or `(b ^ '\\') - 1` only
/// where that XOR is zero, and from `b - 0x20` only where `b` is below 0x20.
/// A byte from 0x80 up XORs to two values from 0x80 up, which cannot both be
/// 0x80, so one of the two subtractions keeps its high bit.
#[inline]
fn specials(w: u64) -> u64 {
    let quote = (w ^ (ONES * u64::from(b'"'))).wrapping_sub(ONES);
    let backslash = (w ^ (ONES * u64::from(b'\\'))).wrapping_sub(ONES);
    let control = w.wrapping_sub(ONES * 0x20);
    (quote | backslash | control) & HIGHS
}

/// Crosses string bytes eight at a time from `i`: the index of the first
/// `"`, `\`, control character or byte that is not ASCII, or of the last
/// bytes, fewer than eight, which the caller reads one by one.
#[inline]
fn next_special(data: &[u8], mut i: usize) -> usize {
    while let Some(chunk) = data.get(i..i + 8) {
        let mut word = [0; 8];
        word.copy_from_slice(chunk);
        let found = specials(u64::from_le_bytes(word));
        if found != 0 {
            return i + (found.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    i
}

impl<'a> Scan<'a> {
    fn new(data: &'a [u8], pos: usize) -> Self {
        Self {
            data,
            pos,
            stack: Vec::new(),
            line_breaks: false,
            not_utf8: None,
        }
    }

    fn error(&self, kind: ErrorKind) -> ScanError {
        self.error_at(self.pos, kind)
    }

    /// An error at `at`; past the end of the input, the input was cut.
    fn error_at(&self, at: usize, kind: ErrorKind) -> ScanError {
        let kind = if at >= self.data.len() {
            ErrorKind::Eof
        } else {
            kind
        };
        ScanError { at, kind }
    }

    #[inline]
    fn peek(&self) -> Option<u8> {
        self.data.get(self.pos).copied()
    }

    /// Skips whitespace. Inlined for the common cases, no whitespace or one
    /// space (after a `:` or `,` in Python's and GitHub's JSON); longer runs
    /// and line breaks take the loop.
    #[inline]
    fn skip_ws(&mut self) {
        match self.data.get(self.pos) {
            Some(b' ') => {
                self.pos += 1;
                if self.data.get(self.pos).is_some_and(|&b| b > b' ') {
                    return;
                }
            }
            Some(&b) if b > b' ' => return,
            _ => {}
        }
        self.skip_ws_run();
    }

    #[inline(never)]
    fn skip_ws_run(&mut self) {
        while let Some(&b) = self.data.get(self.pos) {
            match b {
                b' ' | b'\t' => {}
                b'\n' | b'\r' => self.line_breaks = true,
                _ => return,
            }
            self.pos += 1;
        }
    }

    #[inline]
    fn expect(&mut self, byte: u8, what: &'static str) -> Result<()> {
        self.skip_ws();
        if self.peek() == Some(byte) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.error(ErrorKind::Expected(what)))
        }
    }

    /// Skips whitespace and returns where the next value starts.
    fn value_start(&mut self) -> usize {
        self.skip_ws();
        self.pos
    }

    /// Steps over a string whose `"` is at `pos`; returns whether it held an
    /// escape.
    ///
    /// Most strings hold no escape: this part, inlined where strings are
    /// crossed, takes them to their closing quote; the first `\`, control
    /// character or byte that is not ASCII goes on in `string_rest`, out of
    /// line. Webhook strings are short (26 bytes on average), so the call
    /// and the returned `Result` that inlining saves were a sixth of the
    /// time spent skipping values.
    #[inline]
    fn string(&mut self) -> Result<bool> {
        let i = next_special(self.data, self.pos + 1);
        if self.data.get(i) == Some(&b'"') {
            self.pos = i + 1;
            return Ok(false);
        }
        self.string_rest(i)
    }

    /// The rest of a string from `i`: escapes, control characters, bytes
    /// that are not ASCII, and the last bytes of the input.
    #[inline(never)]
    fn string_rest(&mut self, mut i: usize) -> Result<bool> {
        let data = self.data;
        let mut escaped = false;
        loop {
            i = next_special(data, i);
            match data.get(i) {
                Some(b'"') => {
                    self.pos = i + 1;
                    return Ok(escaped);
                }
                Some(b'\\') => {
                    escaped = true;
                    i += match data.get(i + 1) {
                        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => 2,
                        Some(b'u') => match data.get(i + 2..i + 6) {
                            Some(hex) if hex.iter().all(u8::is_ascii_hexdigit) => 6,
                            Some(_) => return Err(self.error_at(i, ErrorKind::InvalidEscape)),
                            None => return Err(self.error_at(data.len(), ErrorKind::Eof)),
                        },
                        Some(_) => return Err(self.error_at(i, ErrorKind::InvalidEscape)),
                        None => return Err(self.error_at(data.len(), ErrorKind::Eof)),
                    };
                }
                Some(0..=0x1f) => return Err(self.error_at(i, ErrorKind::ControlCharacter)),
                Some(0x80..) => {
                    // UTF-8 encodes a character above ASCII in bytes that
                    // are all above it, so a run of such bytes is whole
                    // characters exactly when it is good text.
                    let run = data[i..].iter().take_while(|&&b| b >= 0x80).count();
                    if let (None, Err(e)) = (self.not_utf8, std::str::from_utf8(&data[i..i + run]))
                    {
                        self.not_utf8 = Some(i + e.valid_up_to());
                    }
                    i += run;
                }
                Some(_) => i += 1,
                None => return Err(self.error_at(data.len(), ErrorKind::Eof)),
            }
        }
    }

    /// The text of the string at `start..end` (quotes included), borrowed
    /// when it has no escapes. Bytes that are not UTF-8 are replaced: the
    /// caller refuses such a record whole ([`Record::not_utf8`]), whatever is
    /// read here.
    fn text(&self, start: usize, end: usize, escaped: bool) -> Result<Cow<'a, str>> {
        let data = self.data;
        let raw = &data[start..end];
        if escaped {
            serde_json::from_slice::<String>(raw)
                .map(Cow::Owned)
                .map_err(|_| self.error_at(start, ErrorKind::BadString))
        } else {
            // (`from_utf8_lossy` alone walks even good text in chunks.)
            let inner = &raw[1..raw.len() - 1];
            Ok(std::str::from_utf8(inner)
                .map_or_else(|_| String::from_utf8_lossy(inner), Cow::Borrowed))
        }
    }

    /// A string value as text; any other value reads as absent, so odd input
    /// never fails a record.
    fn loose_str(&mut self) -> Result<Option<Cow<'a, str>>> {
        let start = self.value_start();
        if self.peek() == Some(b'"') {
            let escaped = self.string()?;
            self.text(start, self.pos, escaped).map(Some)
        } else {
            self.skip_value().map(|()| None)
        }
    }

    /// The raw text of the value starting at `start` (empty if not UTF-8:
    /// the caller refuses such a record whole).
    fn raw(&mut self, start: usize) -> Result<&'a str> {
        self.skip_value()?;
        let data = self.data;
        Ok(std::str::from_utf8(&data[start..self.pos]).unwrap_or_default())
    }

    /// A checksum: `null`, or an integer that fits a `u64`.
    fn crc(&mut self) -> Result<Crc> {
        let start = self.value_start();
        self.skip_value()?;
        let raw = &self.data[start..self.pos];
        Ok(match raw {
            b"null" => Crc::Absent,
            digits if digits.iter().all(u8::is_ascii_digit) => std::str::from_utf8(digits)
                .ok()
                .and_then(|d| d.parse().ok())
                .map_or(Crc::Bad, Crc::Value),
            _ => Crc::Bad,
        })
    }

    /// Walks the object at `pos`, calling `on_key` with each key (unescaped)
    /// with `pos` before its value; `on_key` must step over the value.
    fn object(&mut self, mut on_key: impl FnMut(&mut Self, &[u8]) -> Result<()>) -> Result<()> {
        self.expect(b'{', "`{`")?;
        self.skip_ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(());
        }
        loop {
            self.skip_ws();
            let start = self.pos;
            if self.peek() != Some(b'"') {
                return Err(self.error(ErrorKind::Expected("a key")));
            }
            let escaped = self.string()?;
            let end = self.pos;
            let data = self.data;
            let key = if escaped {
                Cow::Owned(self.text(start, end, true)?.into_owned().into_bytes())
            } else {
                Cow::Borrowed(&data[start + 1..end - 1])
            };
            self.expect(b':', "`:`")?;
            on_key(self, &key)?;
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(());
                }
                _ => return Err(self.error(ErrorKind::Expected("`,` or `}`"))),
            }
        }
    }

    /// Reads a payload object's facts (at `pos`, its `{`).
    fn payload(&mut self) -> Result<Facts<'a>> {
        let mut facts = Facts::default();
        self.object(|s, key| s.payload_key(&mut facts, key))?;
        Ok(facts)
    }

    /// One key of a payload object: a fact to read, or a value to step over.
    fn payload_key(&mut self, facts: &mut Facts<'a>, key: &[u8]) -> Result<()> {
        insert_key(&mut facts.keys, key);
        match key {
            b"action" => facts.action = self.loose_str()?,
            b"repository" => facts.repository = self.repository()?,
            b"sender" => facts.sender = self.sender()?,
            b"alert" => facts.alert = self.alert()?,
            _ => self.skip_value()?,
        }
        Ok(())
    }

    /// Whether the next value is an object; any other value is stepped over.
    fn at_object(&mut self) -> Result<bool> {
        self.skip_ws();
        if self.peek() == Some(b'{') {
            return Ok(true);
        }
        self.skip_value().map(|()| false)
    }

    fn repository(&mut self) -> Result<Repository<'a>> {
        if !self.at_object()? {
            return Ok(Repository::default());
        }
        let mut repo = Repository {
            is_object: true,
            ..Repository::default()
        };
        self.object(|s, key| {
            match key {
                b"full_name" => repo.full_name = s.loose_str()?,
                b"private" => {
                    let start = s.value_start();
                    s.skip_value()?;
                    repo.private = match &s.data[start..s.pos] {
                        b"true" => Private::Bool(true),
                        b"false" => Private::Bool(false),
                        _ => Private::Other,
                    };
                }
                _ => s.skip_value()?,
            }
            Ok(())
        })?;
        Ok(repo)
    }

    /// `login` of an object (the first one); absent for anything else.
    fn sender(&mut self) -> Result<Option<Cow<'a, str>>> {
        if !self.at_object()? {
            return Ok(None);
        }
        let mut login = None;
        let mut seen = false;
        self.object(|s, key| {
            if key == b"login" && !seen {
                seen = true;
                login = s.loose_str()?;
                Ok(())
            } else {
                s.skip_value()
            }
        })?;
        Ok(login)
    }

    /// Which alert event an `alert` object belongs to, told by its first key
    /// that says; anything but an object says nothing.
    fn alert(&mut self) -> Result<AlertKind> {
        if !self.at_object()? {
            return Ok(AlertKind::Unknown);
        }
        let mut kind = AlertKind::Unknown;
        self.object(|s, key| {
            if kind == AlertKind::Unknown {
                kind = match key {
                    b"dependency" | b"security_advisory" => AlertKind::Dependabot,
                    b"secret_type" => AlertKind::SecretScanning,
                    b"affected_package_name" | b"external_identifier" => {
                        AlertKind::RepositoryVulnerability
                    }
                    _ => AlertKind::Unknown,
                };
            }
            s.skip_value()
        })?;
        Ok(kind)
    }

    /// Steps over one value of any kind and depth.
    fn skip_value(&mut self) -> Result<()> {
        self.stack.clear();
        loop {
            // A value.
            self.skip_ws();
            match self.peek() {
                Some(b'"') => {
                    self.string()?;
                }
                Some(b'{') => {
                    self.pos += 1;
                    self.skip_ws();
                    if self.peek() == Some(b'}') {
                        self.pos += 1;
                    } else {
                        self.key()?;
                        self.stack.push(true);
                        continue;
                    }
                }
                Some(b'[') => {
                    self.pos += 1;
                    self.skip_ws();
                    if self.peek() == Some(b']') {
                        self.pos += 1;
                    } else {
                        self.stack.push(false);
                        continue;
                    }
                }
                Some(b't') => self.literal(b"true")?,
                Some(b'f') => self.literal(b"false")?,
                Some(b'n') => self.literal(b"null")?,
                Some(b'-' | b'0'..=b'9') => self.number()?,
                _ => return Err(self.error(ErrorKind::Expected("a value"))),
            }
            // After a value: close containers until one goes on.
            loop {
                let Some(&in_object) = self.stack.last() else {
                    return Ok(());
                };
                self.skip_ws();
                match (self.peek(), in_object) {
                    (Some(b','), true) => {
                        self.pos += 1;
                        self.key()?;
                        break;
                    }
                    (Some(b','), false) => {
                        self.pos += 1;
                        break;
                    }
                    (Some(b'}'), true) | (Some(b']'), false) => {
                        self.pos += 1;
                        self.stack.pop();
                    }
                    (_, true) => return Err(self.error(ErrorKind::Expected("`,` or `}`"))),
                    (_, false) => return Err(self.error(ErrorKind::Expected("`,` or `]`"))),
                }
            }
        }
    }

    /// A key and its colon, inside an object being skipped.
    #[inline]
    fn key(&mut self) -> Result<()> {
        self.skip_ws();
        if self.peek() != Some(b'"') {
            return Err(self.error(ErrorKind::Expected("a key")));
        }
        self.string()?;
        if self.peek() == Some(b':') {
            self.pos += 1;
            Ok(())
        } else {
            self.expect(b':', "`:`")
        }
    }

    fn literal(&mut self, word: &'static [u8]) -> Result<()> {
        match self.data.get(self.pos..self.pos + word.len()) {
            Some(found) if found == word => {
                self.pos += word.len();
                Ok(())
            }
            // Cut short: the input ends inside the word.
            None if self.data[self.pos..] == word[..self.data.len() - self.pos] => {
                Err(self.error_at(self.data.len(), ErrorKind::Eof))
            }
            _ => Err(self.error(ErrorKind::Expected("a value"))),
        }
    }

    /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`
    fn number(&mut self) -> Result<()> {
        let data = self.data;
        let mut i = self.pos;
        if data.get(i) == Some(&b'-') {
            i += 1;
        }
        let digits = |i: usize| {
            data[i.min(data.len())..]
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .count()
        };
        match data.get(i) {
            Some(b'0') => i += 1,
            Some(b'1'..=b'9') => i += digits(i),
            _ => return Err(self.error_at(i, ErrorKind::InvalidNumber)),
        }
        if data.get(i) == Some(&b'.') {
            let n = digits(i + 1);
            if n == 0 {
                return Err(self.error_at(i + 1, ErrorKind::InvalidNumber));
            }
            i += 1 + n;
        }
        if let Some(b'e' | b'E') = data.get(i) {
            i += 1;
            if let Some(b'+' | b'-') = data.get(i) {
                i += 1;
            }
            let n = digits(i);
            if n == 0 {
                return Err(self.error_at(i, ErrorKind::InvalidNumber));
            }
            i += n;
        }
        self.pos = i;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn skip(text: &str) -> Result<usize> {
        skip_value(text.as_bytes(), 0).map(|(end, _)| end)
    }

    #[test]
    fn picks_envelope_and_payload_facts_in_one_pass() {
        let json = br#"{"body": {"action": "opened", "repository": {"full_name": "o/r", "private": false, "owner": {"login": "o"}}, "sender": {"id": 1, "login": "octocat"}, "pull_request": {"body": "x"}}, "event": "pull_request", "request_id": "id-1"}"#;
        let r = record(json, 0).unwrap();
        assert_eq!(r.end, json.len());
        assert_eq!(r.event.as_deref(), Some("pull_request"));
        assert_eq!(r.request_id.as_deref(), Some("id-1"));
        let (range, facts) = r.body.unwrap();
        assert!(json[range].starts_with(b"{\"action\""));
        let facts = facts.unwrap();
        assert_eq!(facts.action.as_deref(), Some("opened"));
        assert!(matches!(facts.action, Some(Cow::Borrowed(_))));
        assert_eq!(facts.repository.full_name.as_deref(), Some("o/r"));
        assert_eq!(facts.repository.private, Private::Bool(false));
        assert_eq!(facts.sender.as_deref(), Some("octocat"));
        assert!(facts.keys.contains(Key::PullRequest));
        assert!(!r.facts.keys.contains(Key::Zen));
    }

    #[test]
    fn odd_types_read_as_absent_or_other_never_as_an_error() {
        let json =
            br#"{"action":5,"repository":{"private":"yes"},"sender":null,"event":[1],"alert":"x"}"#;
        let r = record(json, 0).unwrap();
        assert_eq!(r.facts.action, None);
        assert_eq!(r.event, None);
        assert_eq!(r.facts.repository.private, Private::Other);
        assert_eq!(r.facts.alert, AlertKind::Unknown);
        let r = record(br#"{"repository":null}"#, 0).unwrap();
        assert!(!r.facts.repository.is_object);
        let r = record(br#"{"body_crc32":-1}"#, 0).unwrap();
        assert_eq!(r.body_crc32, Crc::Bad);
        let r = record(br#"{"body_crc32":null}"#, 0).unwrap();
        assert_eq!(r.body_crc32, Crc::Absent);
    }

    #[test]
    fn escaped_strings_are_unescaped_and_keys_matched_after_unescaping() {
        let r = record(br#"{"act\u0069on":"caf\u00e9","body":"x"}"#, 0).unwrap();
        assert_eq!(r.facts.action.as_deref(), Some("café"));
        assert_eq!(r.body.unwrap().0, 34..37);
        let e = record(br#"{"action":"\ud800"}"#, 0).unwrap_err();
        assert_eq!(e.kind, ErrorKind::BadString);
    }

    #[test]
    fn errors_say_where_and_tell_a_cut_from_junk() {
        assert!(skip(r#"{"a": [1, 2"#).unwrap_err().is_eof());
        assert!(skip(r#"{"a": "x"#).unwrap_err().is_eof());
        assert!(skip(r#"{"a": tru"#).unwrap_err().is_eof());
        assert!(skip(r#"{"a": "\u00"#).unwrap_err().is_eof());
        let e = skip(r#"{"a" 1}"#).unwrap_err();
        assert_eq!((e.at, e.kind), (5, ErrorKind::Expected("`:`")));
        assert_eq!(
            skip("\"a\u{1}\"").unwrap_err().kind,
            ErrorKind::ControlCharacter
        );
        assert_eq!(skip(r#""\x""#).unwrap_err().kind, ErrorKind::InvalidEscape);
        assert_eq!(skip("-").unwrap_err().kind, ErrorKind::Eof);
        assert_eq!(skip("1.").unwrap_err().kind, ErrorKind::Eof);
        assert_eq!(skip("-a").unwrap_err().kind, ErrorKind::InvalidNumber);
        assert_eq!(skip("[01]").unwrap_err().at, 2, "no leading zeros");
    }

    #[test]
    fn depth_costs_no_call_stack() {
        let deep = format!("{}{}", "[".repeat(1 << 20), "]".repeat(1 << 20));
        assert_eq!(skip(&deep).unwrap(), deep.len());
    }

    #[test]
    fn strings_are_crossed_a_word_at_a_time_without_missing_a_byte() {
        for len in 0..40 {
            for (special, ok) in [("\"", true), ("\\n", true), ("\u{1f}", false), ("é", true)] {
                let s = format!("\"{}{special}{}\"", "a".repeat(len), "b".repeat(len % 9));
                let s = if special == "\"" {
                    format!("\"{}\"", "a".repeat(len))
                } else {
                    s
                };
                assert_eq!(skip(&s).is_ok(), ok, "{s:?}");
                if ok {
                    assert_eq!(skip(&s).unwrap(), s.len(), "{s:?}");
                }
            }
        }
    }

    #[test]
    fn text_that_is_not_utf8_is_found_where_it_lies_and_the_value_still_read() {
        for len in 0..20 {
            let pad = "a".repeat(len);
            // A Latin-1 `é`, and a good `é` before a cut one.
            for (bad, at) in [(&b"\xe9"[..], 0), (&b"\xc3\xa9\xc3"[..], 2)] {
                let text = [b"[\"", pad.as_bytes(), bad, b"z\", \"\xc3\xa9\"]"].concat();
                assert_eq!(
                    skip_value(&text, 0),
                    Ok((text.len(), Some(2 + len + at))),
                    "{len} {bad:?}"
                );
            }
        }
        assert_eq!(
            skip_value("[\"\u{e9}\u{1F600}\"]".as_bytes(), 0).unwrap().1,
            None
        );
        let e = payload(b"{\"a\": \"\xff\"}").unwrap_err();
        assert_eq!((e.at, e.kind), (7, ErrorKind::NotUtf8));
    }

    /// What [`specials`] must flag, a byte at a time.
    fn is_special(b: u8) -> bool {
        b == b'"' || b == b'\\' || !(0x20..0x80).contains(&b)
    }

    #[test]
    fn specials_flags_every_special_byte_in_every_lane_and_nothing_else() {
        for b in 0..=255u8 {
            let special = is_special(b);
            for lane in 0..8 {
                let mut bytes = [b'a'; 8];
                bytes[lane] = b;
                let found = specials(u64::from_le_bytes(bytes));
                assert_eq!(
                    found,
                    u64::from(special) << (lane * 8 + 7),
                    "{b:#x} in lane {lane}"
                );
            }
        }
    }

    proptest::proptest! {
        /// The lowest flag `specials` raises is the first byte that is `"`,
        /// `\`, a control character or not ASCII, and it raises none when
        /// no byte is.
        #[test]
        fn specials_flags_the_first_special_byte_first(
            bytes in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::prelude::Just(b'"'),
                    proptest::prelude::Just(b'\\'),
                    0u8..0x20,
                    0x20u8..0x80,
                    0x80u8..=0xff,
                ],
                8,
            ),
        ) {
            let first = bytes.iter().position(|&b| is_special(b)).unwrap_or(8);
            let word = u64::from_le_bytes(bytes.clone().try_into().unwrap());
            proptest::prop_assert_eq!((specials(word).trailing_zeros() / 8) as usize, first, "{:x?}", bytes);
        }
    }

    /// What `serde_json` makes of one document at the start of `text`: its
    /// end, or that it is not JSON.
    fn serde_end(text: &[u8]) -> Option<usize> {
        let mut stream =
            serde_json::Deserializer::from_slice(text).into_iter::<serde::de::IgnoredAny>();
        match stream.next() {
            Some(Ok(_)) => Some(stream.byte_offset()),
            _ => None,
        }
    }

    proptest::proptest! {
        /// On JSON text and on damaged JSON text alike, this pass and
        /// `serde_json` agree on whether a value is there and where it ends.
        #[test]
        fn agrees_with_serde_json(
            v in crate::fuzzing::strategies::json_value(),
            pretty: bool,
            cut in 0usize..400,
            poke in 0usize..400,
            byte in proptest::prelude::any::<u8>(),
        ) {
            let text = if pretty { serde_json::to_vec_pretty(&v) } else { serde_json::to_vec(&v) }.unwrap();
            let mut damaged = text.clone();
            if !damaged.is_empty() {
                let at = poke % damaged.len();
                damaged[at] = byte;
            }
            for t in [&text[..], &text[..cut.min(text.len())], &damaged[..]] {
                // Inside an array, as records are inside an object: at the
                // top level serde_json reads on past a number (`01`).
                let t = [b"[", t, b"]"].concat();
                let ours = skip_value(&t, 0).ok();
                match (std::str::from_utf8(&t), ours) {
                    (Ok(_), _) => {
                        proptest::prop_assert_eq!(ours, serde_end(&t).map(|end| (end, None)), "{}", String::from_utf8_lossy(&t));
                    }
                    // serde_json steps over a string it does not keep
                    // without checking its UTF-8: what is asked here is that
                    // the pass finds the first bad byte of what it read.
                    (Err(_), Some((end, bad))) => {
                        let first_bad = std::str::from_utf8(&t[..end]).err().map(|e| e.valid_up_to());
                        proptest::prop_assert_eq!(bad, first_bad, "{}", String::from_utf8_lossy(&t));
                    }
                    (Err(_), None) => {}
                }
            }
        }
    }
}
