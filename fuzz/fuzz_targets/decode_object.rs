#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| ghreplay::fuzzing::decode_object(data));
