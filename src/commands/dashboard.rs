//! `serve --ui-listen`: the dashboard beside the receiver. Flags in, the
//! listener bound and the database opened before anything is received
//! (a mistake stops the start), then the indexer and the pages started.
//! Without the `duckdb` feature there is no dashboard, and these types
//! cannot be made.

use std::sync::Arc;

use crate::cli::ServeArgs;
use crate::model::ArchiveLocation;
use crate::server::forward::{Outbox, Progress};
use crate::server::metrics::Metrics;
use crate::server::{Auth, Wake};

/// Where the dashboard's history comes from: the archive (and its
/// endpoint), and the writer's objects.
pub type Archive<'a> = (&'a ArchiveLocation, Option<&'a str>, &'a Outbox);

#[cfg(feature = "duckdb")]
pub use enabled::*;

#[cfg(feature = "duckdb")]
mod enabled {
    use anyhow::{bail, Context as _};
    use duckdb::Connection;
    use tokio::net::TcpListener;
    use tokio::sync::{broadcast, watch};

    use super::{Arc, Archive, Auth, Metrics, Progress, ServeArgs, Wake};
    use crate::ui::archived::Archived;
    use crate::ui::index::{self, Follower, Indexer, Sources};
    use crate::ui::{self, Live, Ui};

    pub use crate::ui::index::PROGRESS_NAME;

    /// Bound and opened, not started.
    pub struct Prepared {
        listener: TcpListener,
        url: String,
        tls: Option<tokio_rustls::TlsAcceptor>,
        access: ui::auth::Access,
        conn: Connection,
        public_only: bool,
        history: chrono::TimeDelta,
    }

    /// Checks the dashboard's flags, binds its address and opens its
    /// database; `None` without `--ui-listen`.
    pub async fn prepare(args: &ServeArgs) -> anyhow::Result<Option<Prepared>> {
        let Some(listen) = &args.ui_listen else {
            if args.ui.any() || args.ui_db.is_some() {
                bail!("--ui-db, --ui-token-file, --ui-tls-* and --ui-public-only set up the dashboard: give --ui-listen ADDR too");
            }
            return Ok(None);
        };
        let history = crate::config::parse_span(&args.ui_history).with_context(|| {
            format!(
                "--ui-history {:?}: expected a span (90d, 12w)",
                args.ui_history
            )
        })?;
        let tls = super::super::ui::tls(&args.ui)?;
        let (listener, addr, access) =
            ui::bind(listen, args.ui.ui_token_file.as_deref(), tls.is_some()).await?;
        let path = args
            .ui_db
            .clone()
            .unwrap_or_else(|| index::default_path(&args.spool));
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let conn = index::open(&path).context("opening the dashboard's database (--ui-db)")?;
        Ok(Some(Prepared {
            listener,
            url: ui::url(addr, tls.is_some()),
            tls,
            access,
            conn,
            public_only: args.ui.ui_public_only,
            history,
        }))
    }

    impl Prepared {
        /// Starts following the archive into the database (catching up
        /// first, in the background) and serving the pages.
        pub fn start(
            self,
            auth: &Auth,
            (archive, endpoint_url, outbox): Archive<'_>,
            progress: Arc<Progress>,
            metrics: Arc<Metrics>,
            stopped: watch::Receiver<bool>,
        ) -> anyhow::Result<Running> {
            let (releases, _) = broadcast::channel(1024);
            let indexer = Indexer::new(crate::db::clone_attached(&self.conn)?, releases.clone())?;
            let secrets = match auth {
                Auth::Secrets { secrets, .. } => secrets.clone(),
                Auth::Insecure => Vec::new(),
            };
            let pages = Ui::new(
                self.conn,
                true,
                self.public_only,
                secrets,
                Some(Live {
                    metrics: metrics.clone(),
                    releases,
                }),
                format!("receiving · archive {archive}"),
                self.access,
            )?
            .with_archive(Archived::new(
                archive.clone(),
                endpoint_url.map(str::to_owned),
                Some(outbox.dir.clone()),
            ));
            let sources = Sources {
                archive: archive.clone(),
                endpoint_url: endpoint_url.map(str::to_owned),
                outbox: outbox.clone(),
                history: self.history,
            };
            let follower =
                Follower::start(indexer, sources, progress, move |t| metrics.delivered_at(t))?;
            let task = tokio::spawn(ui::serve(
                self.listener,
                self.tls,
                ui::router(Arc::new(pages)),
                stopped,
            ));
            Ok(Running {
                url: self.url,
                follower,
                task,
            })
        }
    }

    /// The dashboard, running.
    pub struct Running {
        url: String,
        follower: Follower,
        task: tokio::task::JoinHandle<()>,
    }

    impl Running {
        /// Where the pages are.
        #[must_use]
        pub fn url(&self) -> &str {
            &self.url
        }

        /// What the handler wakes after each write.
        #[must_use]
        pub fn wake(&self) -> Arc<Wake> {
            self.follower.wake()
        }

        /// Indexes what is archived, then stops (the pages stopped with
        /// the receiver).
        pub async fn close(self) {
            self.follower.close().await;
            let _ = self.task.await;
        }
    }
}

#[cfg(not(feature = "duckdb"))]
pub use disabled::*;

#[cfg(not(feature = "duckdb"))]
mod disabled {
    use super::{Arc, Archive, Auth, Metrics, Progress, ServeArgs, Wake};

    pub const PROGRESS_NAME: &str = "dashboard";

    /// Never made: this build has no dashboard.
    pub enum Prepared {}
    pub enum Running {}

    #[allow(clippy::unused_async)] // the signature of the build with a dashboard
    pub async fn prepare(_: &ServeArgs) -> anyhow::Result<Option<Prepared>> {
        Ok(None)
    }

    impl Prepared {
        pub fn start(
            self,
            _: &Auth,
            _: Archive<'_>,
            _: Arc<Progress>,
            _: Arc<Metrics>,
            _: tokio::sync::watch::Receiver<bool>,
        ) -> anyhow::Result<Running> {
            match self {}
        }
    }

    impl Running {
        pub fn url(&self) -> &str {
            match *self {}
        }

        pub fn wake(&self) -> Arc<Wake> {
            match *self {}
        }

        #[allow(clippy::unused_async)] // the signature of the build with a dashboard
        pub async fn close(self) {
            match self {}
        }
    }
}
