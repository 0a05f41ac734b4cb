//! `ghreplay ui`: the dashboard's pages over a database made by `load`.

use std::sync::Arc;

use anyhow::Context as _;

use super::Outcome;
use crate::cli::{GlobalArgs, UiAccessArgs, UiArgs};
use crate::db::Database;
use crate::model::ArchiveLocation;
use crate::signature;
use crate::ui::archived::Archived;
use crate::ui::{self, Ui};

pub async fn run(global: &GlobalArgs, args: &UiArgs) -> anyhow::Result<Outcome> {
    if !args.db.exists() {
        anyhow::bail!(
            "{}: no such database; make one with `ghreplay --archive ARCHIVE load --db {}` (or run `serve --ui-listen` for live pages)",
            args.db.display(),
            args.db.display()
        );
    }
    let conn = Database::File(args.db.clone()).open_for_query()?;
    let secrets = match &args.secret_file {
        Some(path) => signature::parse_secrets(
            &std::fs::read_to_string(path)
                .with_context(|| format!("reading --secret-file {}", path.display()))?,
        ),
        None => Vec::new(),
    };
    let tls = tls(&args.access)?;
    let (listener, addr, access) = ui::bind(
        &args.listen,
        args.access.ui_token_file.as_deref(),
        tls.is_some(),
    )
    .await?;
    let source = format!("{} (read-only)", args.db.display());
    let pages = Ui::new(
        conn,
        false,
        args.access.ui_public_only,
        secrets,
        None,
        source,
        access,
    )?;
    // A file made by `serve --ui-listen` leaves most payloads in the
    // archive: a delivery's page reads them there (a `load` file keeps them).
    let pages = pages.with_archive(Archived::new(
        ArchiveLocation::parse(global.archive())?,
        global.endpoint_url.clone(),
        None,
    ));
    let (stop, stopped) = tokio::sync::watch::channel(false);
    eprintln!(
        "ghreplay ui: dashboard on {} ({} read-only); Ctrl-C stops",
        ui::url(addr, tls.is_some()),
        args.db.display()
    );
    let server = tokio::spawn(ui::serve(
        listener,
        tls,
        ui::router(Arc::new(pages)),
        stopped,
    ));
    super::interrupted().await;
    let _ = stop.send(true);
    let _ = server.await;
    Ok(Outcome::Done)
}

/// The dashboard's TLS acceptor, when --ui-tls-cert and --ui-tls-key say.
pub(super) fn tls(access: &UiAccessArgs) -> anyhow::Result<Option<tokio_rustls::TlsAcceptor>> {
    match (&access.ui_tls_cert, &access.ui_tls_key) {
        (Some(cert), Some(key)) => ui::tls_acceptor(cert, key).map(Some),
        _ => Ok(None),
    }
}
