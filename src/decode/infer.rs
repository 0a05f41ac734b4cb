//! Inferring a raw payload's event name from its shape (archive shape B keeps
//! no `X-GitHub-Event`). Rules are tried in order, most specific first; when
//! none fits the event is `unknown`, which the privacy filter never passes.
//!
//! The rules come from GitHub's documented payloads and are measured against
//! `shared/fixtures/payloads` in `tests/infer_fixtures.rs`.

/// The event name given when a payload's shape says nothing certain.
pub const UNKNOWN: &str = "unknown";

macro_rules! keys {
    ($($variant:ident = $name:literal),* $(,)?) => {
        /// Top-level payload keys that tell events apart.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        #[repr(u8)]
        pub enum Key { $($variant),* }

        impl Key {
            #[must_use]
            pub fn from_name(name: &[u8]) -> Option<Key> {
                match name { $($name => Some(Key::$variant),)* _ => None }
            }
        }
    };
}

keys! {
    Zen = b"zen", HookId = b"hook_id", Pusher = b"pusher", Commits = b"commits",
    RefType = b"ref_type", MasterBranch = b"master_branch",
    DeploymentStatus = b"deployment_status", Deployment = b"deployment",
    WorkflowJob = b"workflow_job", WorkflowJobRun = b"workflow_job_run",
    Reviewers = b"reviewers", WorkflowRun = b"workflow_run", Workflow = b"workflow",
    CheckRun = b"check_run", CheckSuite = b"check_suite",
    PullRequest = b"pull_request", Review = b"review", Comment = b"comment", Thread = b"thread",
    Issue = b"issue", Discussion = b"discussion", Release = b"release", Forkee = b"forkee",
    Pages = b"pages", Build = b"build", Sha = b"sha", State = b"state", Context = b"context",
    StarredAt = b"starred_at", Alert = b"alert", CommitOid = b"commit_oid", Rule = b"rule",
    DeployKey = b"key", RepositoriesAdded = b"repositories_added",
    RepositoriesRemoved = b"repositories_removed", Repositories = b"repositories",
    MarketplacePurchase = b"marketplace_purchase", Team = b"team", Member = b"member",
    Scope = b"scope", BlockedUser = b"blocked_user", Membership = b"membership",
    Invitation = b"invitation", Package = b"package", RegistryPackage = b"registry_package",
    ProjectCard = b"project_card", ProjectColumn = b"project_column", Project = b"project",
    ProjectsV2Item = b"projects_v2_item", ProjectsV2 = b"projects_v2", Label = b"label",
    Milestone = b"milestone", Branch = b"branch", ClientPayload = b"client_payload",
    Inputs = b"inputs", SecurityAdvisory = b"security_advisory", Sponsorship = b"sponsorship",
    Installation = b"installation", Organization = b"organization", Repository = b"repository",
    Sender = b"sender", Action = b"action", MergeGroup = b"merge_group",
}

/// A set of [`Key`]s, one bit each.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeySet(u128);

impl KeySet {
    pub fn insert(&mut self, k: Key) {
        self.0 |= 1 << (k as u8);
    }
    #[must_use]
    pub fn contains(self, k: Key) -> bool {
        self.0 & (1 << (k as u8)) != 0
    }
    fn all(self, ks: &[Key]) -> bool {
        ks.iter().all(|&k| self.contains(k))
    }
}

/// Which of the three `{action, alert}` events an alert object belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AlertKind {
    #[default]
    Unknown,
    Dependabot,
    SecretScanning,
    RepositoryVulnerability,
}

/// Actions of the `repository` event; `watch` has only `started`.
const REPOSITORY_ACTIONS: &[&str] = &[
    "created",
    "deleted",
    "archived",
    "unarchived",
    "edited",
    "renamed",
    "transferred",
    "publicized",
    "privatized",
];

const INSTALLATION_ACTIONS: &[&str] = &[
    "created",
    "deleted",
    "suspend",
    "unsuspend",
    "new_permissions_accepted",
];

/// The event name a payload's shape implies, or [`UNKNOWN`].
#[must_use]
pub fn infer_event(keys: KeySet, action: Option<&str>, alert: AlertKind) -> &'static str {
    use Key as K;
    let has = |k| keys.contains(k);
    if has(K::Zen) {
        return "ping";
    }
    if has(K::HookId) {
        return "meta";
    }
    if keys.all(&[K::Pusher, K::Commits]) {
        return "push";
    }
    if has(K::RefType) {
        return if has(K::MasterBranch) {
            "create"
        } else {
            "delete"
        };
    }
    // Before `deployment`, `check_run` and `workflow_run`, which these also carry.
    let ordered: &[(&[Key], &str)] = &[
        (&[K::DeploymentStatus], "deployment_status"),
        (&[K::WorkflowJob], "workflow_job"),
        (&[K::WorkflowJobRun], "deployment_review"),
        (&[K::Reviewers, K::WorkflowRun], "deployment_review"),
        (&[K::Deployment], "deployment"),
        (&[K::CheckRun], "check_run"),
        (&[K::CheckSuite], "check_suite"),
        (&[K::MergeGroup], "merge_group"),
        (&[K::PullRequest, K::Review], "pull_request_review"),
        (&[K::PullRequest, K::Comment], "pull_request_review_comment"),
        (&[K::PullRequest, K::Thread], "pull_request_review_thread"),
        (&[K::PullRequest], "pull_request"),
        (&[K::Issue, K::Comment], "issue_comment"),
        (&[K::Issue], "issues"),
        (&[K::Discussion, K::Comment], "discussion_comment"),
        (&[K::Discussion], "discussion"),
        (&[K::Comment], "commit_comment"),
        (&[K::Release], "release"),
        (&[K::Forkee], "fork"),
        (&[K::Pages], "gollum"),
        (&[K::Build], "page_build"),
        (&[K::Sha, K::State, K::Context], "status"),
        (&[K::StarredAt], "star"),
        (&[K::Alert, K::CommitOid], "code_scanning_alert"),
        (&[K::Rule], "branch_protection_rule"),
        (&[K::DeployKey], "deploy_key"),
        (&[K::RepositoriesAdded], "installation_repositories"),
        (&[K::RepositoriesRemoved], "installation_repositories"),
        (&[K::MarketplacePurchase], "marketplace_purchase"),
        (&[K::Team, K::Member, K::Scope], "membership"),
        (&[K::Member], "member"),
        (&[K::BlockedUser], "org_block"),
        (&[K::Membership], "organization"),
        (&[K::Invitation], "organization"),
        (&[K::RegistryPackage], "registry_package"),
        (&[K::Package], "package"),
        (&[K::ProjectCard], "project_card"),
        (&[K::ProjectColumn], "project_column"),
        (&[K::ProjectsV2Item], "projects_v2_item"),
        (&[K::ProjectsV2], "projects_v2"),
        (&[K::Project], "project"),
        (&[K::Label], "label"),
        (&[K::Milestone], "milestone"),
        (&[K::Branch, K::ClientPayload], "repository_dispatch"),
        (&[K::Inputs, K::Workflow], "workflow_dispatch"),
        (&[K::WorkflowRun], "workflow_run"),
        (&[K::SecurityAdvisory], "security_advisory"),
        (&[K::Sponsorship], "sponsorship"),
        (&[K::Repositories], "installation"),
    ];
    if let Some((_, event)) = ordered.iter().find(|(need, _)| keys.all(need)) {
        return event;
    }
    if has(K::Alert) {
        return match alert {
            AlertKind::Dependabot => "dependabot_alert",
            AlertKind::SecretScanning => "secret_scanning_alert",
            AlertKind::RepositoryVulnerability => "repository_vulnerability_alert",
            AlertKind::Unknown => UNKNOWN,
        };
    }
    if has(K::Team) {
        return if has(K::Action) { "team" } else { "team_add" };
    }
    // What is left carries only the common keys (repository, sender,
    // organization, installation), an action and perhaps `changes`.
    match (has(K::Repository), action) {
        (true, Some("started")) => "watch",
        (true, None) => "public",
        (true, Some(a)) if REPOSITORY_ACTIONS.contains(&a) => "repository",
        (false, Some("revoked")) if !has(K::Installation) => "github_app_authorization",
        (false, Some(a)) if has(K::Installation) && INSTALLATION_ACTIONS.contains(&a) => {
            if has(K::Organization) {
                "organization"
            } else {
                "installation"
            }
        }
        (false, Some(_)) if has(K::Organization) => "organization",
        _ => UNKNOWN,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(names: &[&str]) -> KeySet {
        let mut set = KeySet::default();
        for n in names {
            set.insert(Key::from_name(n.as_bytes()).unwrap());
        }
        set
    }

    #[test]
    fn watch_public_and_repository_are_told_apart_by_action() {
        let k = keys(&["action", "repository", "sender"]);
        assert_eq!(infer_event(k, Some("started"), AlertKind::Unknown), "watch");
        assert_eq!(
            infer_event(k, Some("privatized"), AlertKind::Unknown),
            "repository"
        );
        let k = keys(&["repository", "sender"]);
        assert_eq!(infer_event(k, None, AlertKind::Unknown), "public");
    }

    #[test]
    fn an_unrecognised_shape_is_unknown() {
        let k = keys(&["action", "sender"]);
        assert_eq!(
            infer_event(k, Some("frobnicated"), AlertKind::Unknown),
            UNKNOWN
        );
        assert_eq!(
            infer_event(KeySet::default(), None, AlertKind::Unknown),
            UNKNOWN
        );
    }
}
