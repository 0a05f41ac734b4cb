//! The privacy filter: Mozilla's rules (formats.md section 4). An allow-list,
//! so that event types GitHub adds later can never leak, and failing closed
//! wherever the payload does not say plainly that the repository is public.

use crate::model::{Event, Private};

/// Events that may be public, and only these.
pub const PUBLIC_EVENTS: [&str; 17] = [
    "commit_comment",
    "create",
    "delete",
    "deployment",
    "deployment_status",
    "fork",
    "gollum",
    "issue_comment",
    "issues",
    "page_build",
    "pull_request_review_comment",
    "pull_request_review",
    "pull_request",
    "push",
    "release",
    "status",
    "watch",
];

/// Whether an event may be shown to the public.
///
/// Public only when the event name is on the allow-list, the payload has a
/// `repository` object (every allowed event is about one), and its `private`
/// is `false` or absent. `null`, a string or any other non-boolean counts as
/// not public.
#[must_use]
pub fn is_public(event: &str, repository_object: bool, private: Private) -> bool {
    PUBLIC_EVENTS.contains(&event)
        && repository_object
        && matches!(private, Private::Bool(false) | Private::Absent)
}

/// [`is_public`] for a decoded event.
#[must_use]
pub fn event_is_public(e: &Event) -> bool {
    is_public(&e.event, e.repository_object, e.private)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_allow_listed_event_in_a_public_repository_is_public() {
        for event in PUBLIC_EVENTS {
            assert!(is_public(event, true, Private::Bool(false)), "{event}");
        }
    }

    #[test]
    fn rule_private_repository_is_never_public() {
        for event in PUBLIC_EVENTS {
            assert!(!is_public(event, true, Private::Bool(true)), "{event}");
        }
    }

    #[test]
    fn rule_explicitly_private_events_are_never_public() {
        for event in ["member", "membership", "public", "repository", "team_add"] {
            assert!(!is_public(event, true, Private::Bool(false)), "{event}");
        }
    }

    #[test]
    fn rule_events_off_the_list_and_unknown_events_are_not_public() {
        for event in [
            "unknown",
            "",
            "ping",
            "workflow_run",
            "some_future_event",
            "Push",
        ] {
            assert!(!is_public(event, true, Private::Bool(false)), "{event}");
        }
    }

    #[test]
    fn rule_missing_repository_object_fails_closed() {
        assert!(!is_public("push", false, Private::Absent));
        assert!(!is_public("release", false, Private::Bool(false)));
    }

    #[test]
    fn rule_private_flag_that_is_not_a_boolean_fails_closed() {
        assert!(!is_public("push", true, Private::Other));
    }

    #[test]
    fn rule_absent_private_flag_is_not_true_so_public() {
        assert!(is_public("push", true, Private::Absent));
    }
}
