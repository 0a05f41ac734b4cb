//! GitHub's webhook signatures (formats.md section 7): verified by `serve`
//! over the raw body bytes in constant time, before anything is parsed, and
//! made by the HTTP transport when it re-signs a delivery.

use hmac::{Hmac, Mac};

/// A webhook secret. Its bytes never reach logs or `Debug`.
#[derive(Clone)]
pub struct Secret(Vec<u8>);

impl Secret {
    #[must_use]
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Self(bytes.into())
    }

    /// The bytes, to compute a signature with.
    #[must_use]
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Secrets from a file or an environment value: one per non-empty line,
/// several for rotation. A trailing newline is not part of a secret.
#[must_use]
pub fn parse_secrets(text: &str) -> Vec<Secret> {
    text.lines()
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .filter(|l| !l.is_empty())
        .map(|l| Secret::new(l.as_bytes()))
        .collect()
}

/// Why a delivery was not authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("missing X-Hub-Signature-256")]
    Missing,
    #[error("only the SHA-1 X-Hub-Signature was sent, and --allow-sha1 is off")]
    Sha1Only,
    #[error("malformed signature header")]
    Malformed,
    #[error("signature does not match")]
    Mismatch,
}

impl Rejection {
    /// The `reason` label in metrics.
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Rejection::Missing => "signature_missing",
            Rejection::Sha1Only => "signature_sha1_only",
            Rejection::Malformed => "signature_malformed",
            Rejection::Mismatch => "signature_mismatch",
        }
    }
}

/// Checks `X-Hub-Signature-256` (or, with `allow_sha1`, `X-Hub-Signature`)
/// against every secret.
pub fn verify(
    secrets: &[Secret],
    body: &[u8],
    sha256_header: Option<&[u8]>,
    sha1_header: Option<&[u8]>,
    allow_sha1: bool,
) -> Result<(), Rejection> {
    match (sha256_header, sha1_header) {
        (Some(h), _) => check(Algorithm::Sha256, secrets, body, h),
        (None, Some(h)) if allow_sha1 => check(Algorithm::Sha1, secrets, body, h),
        (None, Some(_)) => Err(Rejection::Sha1Only),
        (None, None) => Err(Rejection::Missing),
    }
}

#[derive(Clone, Copy)]
enum Algorithm {
    Sha256,
    Sha1,
}

fn check(alg: Algorithm, secrets: &[Secret], body: &[u8], header: &[u8]) -> Result<(), Rejection> {
    let (prefix, len): (&[u8], usize) = match alg {
        Algorithm::Sha256 => (b"sha256=", 32),
        Algorithm::Sha1 => (b"sha1=", 20),
    };
    let hex_sig = header.strip_prefix(prefix).ok_or(Rejection::Malformed)?;
    let sig = hex::decode(hex_sig).map_err(|_| Rejection::Malformed)?;
    if sig.len() != len {
        return Err(Rejection::Malformed);
    }
    let mut matched = false;
    for s in secrets {
        // `verify_slice` compares in constant time; HMAC takes keys of any length.
        matched |= match alg {
            Algorithm::Sha256 => Hmac::<sha2::Sha256>::new_from_slice(&s.0)
                .map(|m| m.chain_update(body).verify_slice(&sig).is_ok()),
            Algorithm::Sha1 => Hmac::<sha1::Sha1>::new_from_slice(&s.0)
                .map(|m| m.chain_update(body).verify_slice(&sig).is_ok()),
        }
        .unwrap_or(false);
    }
    if matched {
        Ok(())
    } else {
        Err(Rejection::Mismatch)
    }
}

/// The `sha256=...` header value for `body` (for tests and load generators).
#[must_use]
pub fn sign_sha256(secret: &[u8], body: &[u8]) -> String {
    let mac = Hmac::<sha2::Sha256>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    format!(
        "sha256={}",
        hex::encode(mac.chain_update(body).finalize().into_bytes())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn githubs_own_test_vector_passes() {
        let secret = [Secret::new("It's a Secret to Everybody")];
        let sig = b"sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        assert_eq!(
            verify(&secret, b"Hello, World!", Some(sig), None, false),
            Ok(())
        );
        assert_eq!(
            sign_sha256(b"It's a Secret to Everybody", b"Hello, World!").as_bytes(),
            sig
        );
        assert_eq!(
            verify(&secret, b"Hello, World?", Some(sig), None, false),
            Err(Rejection::Mismatch)
        );
    }

    #[test]
    fn any_secret_of_a_rotation_verifies() {
        let secrets = parse_secrets("old-secret\nnew-secret\n");
        assert_eq!(secrets.len(), 2);
        let sig = sign_sha256(b"new-secret", b"{}");
        assert_eq!(
            verify(&secrets, b"{}", Some(sig.as_bytes()), None, false),
            Ok(())
        );
        let other = sign_sha256(b"someone-else", b"{}");
        assert_eq!(
            verify(&secrets, b"{}", Some(other.as_bytes()), None, false),
            Err(Rejection::Mismatch)
        );
    }

    #[test]
    fn missing_malformed_and_sha1_only_are_rejected() {
        let s = [Secret::new("k")];
        assert_eq!(
            verify(&s, b"{}", None, None, false),
            Err(Rejection::Missing)
        );
        assert_eq!(
            verify(&s, b"{}", Some(b"sha256=zz"), None, false),
            Err(Rejection::Malformed)
        );
        assert_eq!(
            verify(&s, b"{}", Some(b"sha256=00"), None, false),
            Err(Rejection::Malformed),
            "too short for SHA-256"
        );
        assert_eq!(
            verify(&s, b"{}", Some(b"md5=00"), None, false),
            Err(Rejection::Malformed)
        );
        let sha1 = {
            let mut mac = Hmac::<sha1::Sha1>::new_from_slice(b"k").unwrap();
            mac.update(b"{}");
            format!("sha1={}", hex::encode(mac.finalize().into_bytes()))
        };
        assert_eq!(
            verify(&s, b"{}", None, Some(sha1.as_bytes()), false),
            Err(Rejection::Sha1Only)
        );
        assert_eq!(verify(&s, b"{}", None, Some(sha1.as_bytes()), true), Ok(()));
    }

    #[test]
    fn secrets_never_print() {
        assert_eq!(format!("{:?}", Secret::new("hunter2")), "Secret(***)");
    }
}
