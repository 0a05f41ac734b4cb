//! The floors of `benches/read.sh`: the least a reader of a gzip archive must
//! do. Reads every object of a directory whole, then gunzips each into one
//! buffer on all cores (rayon), with libdeflate (`ld`) or with flate2's
//! zlib-rs (`zrs`, what ghreplay streams with), and does nothing else.
//!
//! ```text
//! cargo bench --bench gunzip_floor -- ld|zrs DIR
//! ```
//! Prints `<objects> <decompressed bytes> <seconds>`; the time includes
//! reading the files (from the page cache once warm), as ghreplay's does.
#![allow(clippy::unwrap_used, clippy::missing_panics_doc)] // a benchmark tool

#[path = "support/args.rs"]
mod args;

use std::io::Read as _;
use std::path::PathBuf;
use std::time::Instant;

use rayon::prelude::*;

fn files(dir: PathBuf, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files(path, out);
        } else {
            out.push(path);
        }
    }
}

/// libdeflate into a buffer sized from the gzip trailer.
fn libdeflate(raw: &[u8]) -> usize {
    let size = u32::from_le_bytes(raw[raw.len() - 4..].try_into().unwrap()) as usize;
    let mut out = vec![0u8; size];
    libdeflater::Decompressor::new()
        .gzip_decompress(raw, &mut out)
        .unwrap()
}

/// zlib-rs through flate2, as a stream into a growing buffer.
fn zlib_rs(raw: &[u8]) -> usize {
    let mut out = Vec::with_capacity(raw.len() * 8);
    flate2::read::MultiGzDecoder::new(raw)
        .read_to_end(&mut out)
        .unwrap()
}

fn main() {
    let args = args::args();
    let inflate: fn(&[u8]) -> usize = match args[0].as_str() {
        "ld" => libdeflate,
        "zrs" => zlib_rs,
        other => panic!("{other}: expected ld or zrs"),
    };
    let mut paths = Vec::new();
    files(PathBuf::from(&args[1]), &mut paths);
    let started = Instant::now();
    let bytes: usize = paths
        .par_iter()
        .map(|p| inflate(&std::fs::read(p).unwrap()))
        .sum();
    println!(
        "{} {bytes} {:.3}",
        paths.len(),
        started.elapsed().as_secs_f64()
    );
}
