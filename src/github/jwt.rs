//! A GitHub App authenticates as itself with a JSON Web Token signed RS256
//! with the app's private key (the PEM file GitHub hands out, PKCS#1, or a
//! PKCS#8 conversion of it): `iat` a minute in the past against clock drift,
//! `exp` at most ten minutes later, `iss` the app's id.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{RsaKeyPair, RSA_PKCS1_SHA256};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chrono::{DateTime, Duration, Utc};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::PrivateKeyDer;

/// How long a token is valid: under GitHub's ten-minute ceiling, with room
/// for a clock that runs ahead.
pub const LIFETIME: Duration = Duration::minutes(9);

/// An app's private key. Never shown.
pub struct AppKey(RsaKeyPair);

impl std::fmt::Debug for AppKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AppKey(***)")
    }
}

impl AppKey {
    /// Reads a PEM private key: `BEGIN RSA PRIVATE KEY` (as GitHub gives
    /// it) or `BEGIN PRIVATE KEY`.
    pub fn from_pem(pem: &[u8]) -> Result<Self, String> {
        let der = PrivateKeyDer::from_pem_slice(pem)
            .map_err(|e| format!("not a PEM private key ({e})"))?;
        let pair = match &der {
            PrivateKeyDer::Pkcs1(k) => RsaKeyPair::from_der(k.secret_pkcs1_der()),
            PrivateKeyDer::Pkcs8(k) => RsaKeyPair::from_pkcs8(k.secret_pkcs8_der()),
            _ => return Err("not an RSA key (a GitHub App's key is RSA)".into()),
        };
        pair.map(AppKey)
            .map_err(|e| format!("not a usable RSA key ({e})"))
    }

    /// The token for app `app_id` at `now`.
    pub fn token(&self, app_id: &str, now: DateTime<Utc>) -> Result<String, String> {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","typ":"JWT"}"#);
        let claims = serde_json::json!({
            "iat": (now - Duration::seconds(60)).timestamp(),
            "exp": (now + LIFETIME).timestamp(),
            "iss": app_id,
        });
        let claims = URL_SAFE_NO_PAD.encode(claims.to_string());
        let signed = format!("{header}.{claims}");
        let mut signature = vec![0; self.0.public_modulus_len()];
        self.0
            .sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                signed.as_bytes(),
                &mut signature,
            )
            .map_err(|e| format!("signing the app's token: {e}"))?;
        Ok(format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::signature::{KeyPair as _, UnparsedPublicKey, RSA_PKCS1_2048_8192_SHA256};
    use chrono::TimeZone as _;

    #[test]
    fn token_verifies_with_the_public_key_and_carries_the_claims() {
        // A key generated here, as PKCS#8; the integration tests sign with
        // an openssl PKCS#1 key, the form GitHub hands out.
        let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
        let pkcs8 =
            aws_lc_rs::encoding::AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&pair).unwrap();
        let pem = format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            base64::engine::general_purpose::STANDARD.encode(pkcs8.as_ref())
        );
        let key = AppKey::from_pem(pem.as_bytes()).unwrap();
        let now = Utc.with_ymd_and_hms(2026, 12, 1, 10, 0, 0).unwrap();
        let token = key.token("12345", now).unwrap();
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3);
        let claims: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        assert_eq!(claims["iss"], "12345");
        assert_eq!(claims["iat"], now.timestamp() - 60);
        assert!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap() <= 600);
        let public = UnparsedPublicKey::new(
            &RSA_PKCS1_2048_8192_SHA256,
            pair.public_key().as_ref().to_vec(),
        );
        let signature = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
        public
            .verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &signature)
            .unwrap();
        assert!(public.verify(b"other", &signature).is_err());
    }

    #[test]
    fn refuses_what_is_not_an_rsa_key_and_never_shows_one() {
        assert!(AppKey::from_pem(b"nonsense").is_err());
        let ec = "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIB\n-----END EC PRIVATE KEY-----\n";
        assert!(AppKey::from_pem(ec.as_bytes()).is_err());
    }
}
