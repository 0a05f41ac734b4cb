//! Event inference for raw payloads (archive shape B), measured against
//! GitHub's example payloads in `../shared/fixtures/payloads/<event>/`.

use crate::common;
use ghreplay::decode::{decode_object, DecodeOptions};
use ghreplay::filter::privacy::PUBLIC_EVENTS;

#[test]
fn inference_names_every_public_event_right_and_never_leaks() {
    let payloads = common::shared_payloads();
    let (mut right, mut total) = (0, 0);
    let mut wrong = Vec::new();
    for (event, path) in common::payload_files(&payloads) {
        let bytes = std::fs::read(&path).unwrap();
        let obj = decode_object("k".into(), None, bytes, &DecodeOptions::default());
        assert!(
            obj.problems.is_empty(),
            "{}: {:?}",
            path.display(),
            obj.problems
        );
        let inferred = &obj.events[0].event;
        total += 1;
        if *inferred == event {
            right += 1;
        } else {
            wrong.push(format!("{event} -> {inferred} ({})", path.display()));
            // A wrong name must never turn a private event public.
            assert!(
                !PUBLIC_EVENTS.contains(&inferred.as_str()),
                "{event} inferred as public event {inferred}: {}",
                path.display()
            );
        }
        if PUBLIC_EVENTS.contains(&event.as_str()) {
            assert_eq!(*inferred, event, "{}", path.display());
        }
    }
    let accuracy = f64::from(right) / f64::from(total);
    eprintln!(
        "inference: {right}/{total} payloads right ({:.1}%)",
        accuracy * 100.0
    );
    for w in &wrong {
        eprintln!("  {w}");
    }
    assert!(
        total > 100,
        "expected the octokit fixtures, found {total} files"
    );
    assert!(accuracy >= 0.97, "accuracy {accuracy}");
}
