//! The TLS configuration in force in this process, loaded where the files can be checked before
//! any worker depends on them.
//!
//! The supervisor calls [`install`] at start-up (a broken file stops tern there) and [`reload`]
//! on SIGHUP, before the rolling restart forks the new workers: they inherit whatever config is
//! current, so a renewed certificate reaches every new connection once the old workers have
//! drained, and the connections the old workers hold are never touched. A new file that does
//! not load is logged, and the config loaded before stays in force.

use std::sync::{Arc, Mutex};

use rustls::ServerConfig;

use crate::config::TlsConfig;

/// The files to read again on reload, and what they gave last time they loaded.
struct Current {
    config: TlsConfig,
    server: Arc<ServerConfig>,
}

static CURRENT: Mutex<Option<Current>> = Mutex::new(None);

/// Loads the certificate and key (and client CAs) for this process and the workers it forks.
pub fn install(config: &TlsConfig) -> Result<(), String> {
    let server = super::load::server_config(config)?;
    *lock() = Some(Current {
        config: config.clone(),
        server,
    });
    Ok(())
}

/// Loads the files again (SIGHUP). On failure the error is logged and the config in force is
/// kept. Does nothing when no TLS is configured.
pub fn reload() {
    let mut current = lock();
    let Some(current) = current.as_mut() else {
        return;
    };
    match super::load::server_config(&current.config) {
        Ok(server) => {
            current.server = server;
            tracing::info!(
                "TLS: loaded the certificate {} and key {} again",
                current.config.cert_file.display(),
                current.config.key_file.display()
            );
        }
        Err(message) => tracing::error!(
            "TLS: cannot load the new certificate, keeping the one loaded before: {message}"
        ),
    }
}

/// The config in force, with the settings it was loaded from; None without TLS.
pub fn get() -> Option<(Arc<ServerConfig>, TlsConfig)> {
    lock()
        .as_ref()
        .map(|current| (current.server.clone(), current.config.clone()))
}

fn lock() -> std::sync::MutexGuard<'static, Option<Current>> {
    // Replaced whole, never left half-written: a panic elsewhere cannot break it.
    CURRENT
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
