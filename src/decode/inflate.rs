//! Decompression: an object's bytes as fetched -> its decompressed bytes,
//! within the size cap.
//!
//! Two ways, one result. The fast one gunzips the whole object in one call
//! (libdeflate) into a buffer recycled from earlier objects (no zeroing, no
//! page faults once warm); it is taken only when it can be trusted to read
//! everything: one gzip member, its size told truthfully by the trailer,
//! within the cap. Everything else (several members, a cut or corrupt
//! stream, a trailer that lies, a size past the cap) streams through flate2,
//! which keeps every byte before a fault and says why it stopped.

use std::cell::RefCell;
use std::io::Read;
use std::sync::Mutex;

use flate2::read::MultiGzDecoder;

use super::DecodeError;

/// Returns the decompressed bytes, or what could be decompressed and why the
/// rest could not.
pub(super) fn decompress(raw: Vec<u8>, cap: u64) -> Result<Vec<u8>, (Vec<u8>, DecodeError)> {
    const ZIP: &[u8] = b"PK\x03\x04";
    const SNAPPY_FRAMED: &[u8] = b"\xff\x06\x00\x00sNaPpY";
    if raw.starts_with(ZIP) {
        return Err((Vec::new(), DecodeError::UnsupportedCompression("zip")));
    }
    if raw.starts_with(SNAPPY_FRAMED) {
        return Err((Vec::new(), DecodeError::UnsupportedCompression("snappy")));
    }
    if !raw.starts_with(&[0x1f, 0x8b]) {
        if raw.len() as u64 > cap {
            let mut raw = raw;
            raw.truncate(cap as usize);
            return Err((raw, DecodeError::TooLarge { limit: cap }));
        }
        return Ok(raw);
    }
    if let Some(whole) = inflate_whole(&raw, cap) {
        return Ok(whole);
    }
    // The gzip trailer holds the last member's size mod 2^32: a good guess
    // for the buffer, trusted only within reason.
    let hint = size_field(&raw).map_or(0, |field| u32::from_le_bytes(field) as usize);
    let plausible = hint.min(raw.len().saturating_mul(64)).min(cap as usize);
    let mut out = Vec::with_capacity(plausible.max(raw.len()));
    let result = MultiGzDecoder::new(raw.as_slice())
        .take(cap + 1)
        .read_to_end(&mut out);
    match result {
        Err(e) => {
            let decompressed = out.len() as u64;
            Err((
                out,
                DecodeError::Gzip {
                    decompressed,
                    message: e.to_string(),
                },
            ))
        }
        Ok(_) if out.len() as u64 > cap => {
            out.truncate(cap as usize);
            Err((out, DecodeError::TooLarge { limit: cap }))
        }
        Ok(_) => Ok(out),
    }
}

thread_local! {
    /// libdeflate's decompressor (its tables), one per decoding thread.
    static INFLATER: RefCell<libdeflater::Decompressor> =
        RefCell::new(libdeflater::Decompressor::new());
}

/// Deflate's largest expansion is a little over 1032 to 1.
const MAX_DEFLATE_RATIO: usize = 1032;

/// Decompressed buffers given back by objects the run is done with, for the
/// next ones. Bounded in number and in bytes, so that what is kept stays
/// small beside the objects in flight (and in a long-running `serve`).
static SPARE: Mutex<Spares> = Mutex::new(Spares(Vec::new()));
const SPARE_BUFFERS: usize = 8;
const SPARE_BYTES: usize = 64 << 20;
/// Smaller buffers are not worth keeping.
const RECYCLED_FROM: usize = 64 << 10;

struct Spares(Vec<Vec<u8>>);

impl Spares {
    /// The smallest kept buffer that holds `size` bytes, wherever it lies
    /// among them: objects differ in size, and one too small for this object
    /// fits the next (and a large one is left for a large object).
    fn take(&mut self, size: usize) -> Option<Vec<u8>> {
        let (fits, _) = self
            .0
            .iter()
            .enumerate()
            .filter(|(_, buf)| buf.capacity() >= size)
            .min_by_key(|(_, buf)| buf.capacity())?;
        Some(self.0.swap_remove(fits))
    }

    /// Keeps `buf` if it is worth keeping and there is room.
    fn keep(&mut self, buf: Vec<u8>) {
        let kept: usize = self.0.iter().map(Vec::capacity).sum();
        if buf.capacity() >= RECYCLED_FROM
            && self.0.len() < SPARE_BUFFERS
            && kept + buf.capacity() <= SPARE_BYTES
        {
            self.0.push(buf);
        }
    }
}

/// A buffer of `size` bytes: a spare one (its bytes are whatever it last
/// held: the caller overwrites them all), else a [`fresh`] one.
fn buffer(size: usize) -> Vec<u8> {
    let spare = SPARE.lock().ok().and_then(|mut spares| spares.take(size));
    let mut buf = spare.unwrap_or_else(|| fresh(size));
    buf.resize(size, 0);
    buf
}

/// A new buffer for `size` bytes. It costs a page fault and a zeroed page
/// for every 4 KiB written, where a spare costs nothing; so it is made an
/// eighth larger (pages never written cost nothing), to fit the objects
/// after this one too. At most [`HEADROOM`] larger: past that, the spare
/// room of a huge object is address space for nothing.
fn fresh(size: usize) -> Vec<u8> {
    vec![0; size.saturating_add((size / 8).min(HEADROOM))]
}

const HEADROOM: usize = 8 << 20;

/// A decompressed object's bytes, shared: slices of it (an HTTP message's
/// body) need no copy, and the buffer goes back to the spares when the last
/// of them is dropped.
pub(super) fn shared(buf: Vec<u8>) -> bytes::Bytes {
    if buf.is_empty() {
        recycle(buf);
        return bytes::Bytes::new();
    }
    bytes::Bytes::from_owner(Recycled(buf))
}

/// The owner behind [`shared`]'s bytes, which gives the buffer back to the
/// spares (see [`SPARE`]) when dropped.
struct Recycled(Vec<u8>);

impl AsRef<[u8]> for Recycled {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for Recycled {
    fn drop(&mut self) {
        recycle(std::mem::take(&mut self.0));
    }
}

fn recycle(buf: Vec<u8>) {
    if let Ok(mut spares) = SPARE.lock() {
        spares.keep(buf);
    }
}

/// The gzip trailer's size field: the object's last 4 bytes, the last
/// member's size mod 2^32 (little-endian), as its writer claims.
fn size_field(raw: &[u8]) -> Option<[u8; 4]> {
    raw.get(raw.len().checked_sub(4)?..)?.try_into().ok()
}

/// Gunzips `raw` in one call, for the common case: one gzip member whose
/// trailer gives its size truthfully, within `cap`. Anything else returns
/// `None`, for streaming to read: libdeflate needs the whole output buffer
/// up front (sized from the trailer, which an attacker writes: so never
/// past the cap, nor past what the input could expand to) and reads one
/// member only, returning nothing of a cut stream.
fn inflate_whole(raw: &[u8], cap: u64) -> Option<Vec<u8>> {
    let trailer = size_field(raw)?;
    let size = u32::from_le_bytes(trailer) as usize;
    if size as u64 > cap || size > raw.len().saturating_mul(MAX_DEFLATE_RATIO) {
        return None;
    }
    let mut out = buffer(size);
    let written = INFLATER.with(|d| d.borrow_mut().gzip_decompress(raw, &mut out));
    // libdeflate checked the member's own trailer (CRC and size) and read no
    // further. The member is the whole object only if that trailer is the
    // object's last bytes: its size field, `trailer`, occurs nowhere else (a
    // chance match elsewhere only sends the object to streaming).
    let whole = || !memchr::memmem::find_iter(raw, &trailer).any(|at| at + 4 != raw.len());
    if written.is_ok_and(|n| n == size) && whole() {
        Some(out)
    } else {
        recycle(out);
        None
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::gzip;
    use super::*;

    fn text(n: usize) -> Vec<u8> {
        (0..n).map(|i| b"{\"a\": 1}\n"[i % 9]).collect()
    }

    #[test]
    fn one_member_takes_the_fast_path_and_anything_else_streams_with_the_same_bytes() {
        let (a, b) = (text(200_000), text(70_001));
        let one = gzip(&a);
        assert_eq!(inflate_whole(&one, 1 << 30).as_deref(), Some(&a[..]));

        // Two members: libdeflate would stop after the first.
        let two = [gzip(&a), gzip(&b)].concat();
        assert!(inflate_whole(&two, 1 << 30).is_none());
        assert_eq!(decompress(two, 1 << 30).unwrap(), [&a[..], &b[..]].concat());

        // Even a second member identical to the first.
        let twins = [gzip(&a), gzip(&a)].concat();
        assert!(inflate_whole(&twins, 1 << 30).is_none());
        assert_eq!(decompress(twins, 1 << 30).unwrap().len(), 2 * a.len());

        // A member and then junk: streaming reads the member and says why it
        // stopped.
        let junk = [gzip(&a), b"not gzip at all".to_vec()].concat();
        assert!(inflate_whole(&junk, 1 << 30).is_none());
        let (kept, why) = decompress(junk, 1 << 30).unwrap_err();
        assert_eq!(kept, a);
        assert!(matches!(why, DecodeError::Gzip { .. }), "{why:?}");
    }

    #[test]
    fn the_trailer_sizes_the_buffer_only_within_the_cap_and_what_input_can_expand_to() {
        let a = text(100_000);
        let mut lying = gzip(&a);
        let at = lying.len() - 4;
        // Claims 4 GiB - 1: past any cap here, and past 1032 times the input.
        lying[at..].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(inflate_whole(&lying, 1 << 30).is_none());
        // Streaming still reads it, and reports the bad trailer.
        let (kept, _) = decompress(lying, 1 << 30).unwrap_err();
        assert_eq!(kept, a);

        // A true size past the cap: streaming, which stops at the cap.
        let (kept, why) = decompress(gzip(&a), 1000).unwrap_err();
        assert_eq!(
            (kept.len(), why),
            (1000, DecodeError::TooLarge { limit: 1000 })
        );
    }

    #[test]
    fn the_smallest_spare_that_fits_is_taken_wherever_it_lies_and_new_buffers_leave_room() {
        let mut spares = Spares(Vec::new());
        spares.keep(Vec::with_capacity(8 * RECYCLED_FROM));
        spares.keep(Vec::with_capacity(4 * RECYCLED_FROM));
        spares.keep(Vec::with_capacity(RECYCLED_FROM));
        spares.keep(Vec::with_capacity(RECYCLED_FROM / 2)); // not worth keeping
        let mut take = |size| spares.take(size).map(|b| b.capacity() / RECYCLED_FROM);
        assert_eq!(take(2 * RECYCLED_FROM), Some(4));
        assert_eq!(take(2 * RECYCLED_FROM), Some(8));
        assert_eq!(take(2 * RECYCLED_FROM), None, "the one too small stays");
        assert_eq!(take(RECYCLED_FROM), Some(1));
        assert_eq!(fresh(8_000_000).len(), 9_000_000);
        assert_eq!(fresh(256 << 20).len(), (256 << 20) + HEADROOM);
    }

    #[test]
    fn a_recycled_buffer_never_shows_what_it_held_before() {
        let (big, small) = (vec![b'x'; 300_000], text(150_000));
        recycle(decompress(gzip(&big), 1 << 30).unwrap());
        for _ in 0..=SPARE_BUFFERS {
            assert_eq!(decompress(gzip(&small), 1 << 30).unwrap(), small);
        }
    }
}
