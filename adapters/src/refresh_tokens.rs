//! Opaque refresh tokens: 256 random bits, stored as SHA-256, successors derived by HMAC.
use application::{RefreshToken, RefreshTokens, TokenFingerprint};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use domain::SessionId;
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

pub struct HmacRefreshTokens {
    key: Vec<u8>,
}

impl HmacRefreshTokens {
    /// `key` derives successors; anyone holding it could compute the successor of a stolen,
    /// already rotated token, so it is as secret as the signing key.
    #[must_use]
    pub fn new(key: Vec<u8>) -> Self {
        Self { key }
    }

    /// A key of its own, derived from the access-token signing secret, so that one secret
    /// setting serves both and neither key can be computed from the other's output.
    #[must_use]
    pub fn derived_from(signing_secret: &[u8]) -> Self {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(signing_secret).expect("HMAC takes keys of any length");
        mac.update(b"registrar refresh-token key");
        Self::new(mac.finalize().into_bytes().to_vec())
    }
}

impl HmacRefreshTokens {
    fn mac(&self, purpose: &[u8], parts: &[&[u8]]) -> Vec<u8> {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes keys of any length");
        mac.update(purpose);
        for part in parts {
            // Length-prefixed, so that ("ab", "c") and ("a", "bc") differ.
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        mac.finalize().into_bytes().to_vec()
    }
}

impl RefreshTokens for HmacRefreshTokens {
    fn for_session(&self, session: SessionId) -> RefreshToken {
        let token = self.mac(
            b"registrar session refresh token",
            &[session.as_uuid().as_bytes()],
        );
        RefreshToken::new(URL_SAFE_NO_PAD.encode(token))
    }

    fn successor_of(&self, token: &RefreshToken) -> RefreshToken {
        let successor = self.mac(
            b"registrar refresh-token successor",
            &[token.expose_secret().as_bytes()],
        );
        RefreshToken::new(URL_SAFE_NO_PAD.encode(successor))
    }

    fn fingerprint(&self, token: &RefreshToken) -> TokenFingerprint {
        TokenFingerprint(Sha256::digest(token.expose_secret().as_bytes()).to_vec())
    }

    fn request_fingerprint(&self, fields: &[&str]) -> TokenFingerprint {
        let parts: Vec<&[u8]> = fields.iter().map(|field| field.as_bytes()).collect();
        TokenFingerprint(self.mac(b"registrar request fingerprint", &parts))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    #[test]
    fn session_tokens_are_keyed_distinct_and_stable() {
        let tokens = HmacRefreshTokens::new(b"key one".to_vec());
        let (a, b) = (
            SessionId::from_uuid(Uuid::now_v7()),
            SessionId::from_uuid(Uuid::now_v7()),
        );
        assert_ne!(tokens.for_session(a), tokens.for_session(b));
        assert_eq!(tokens.for_session(a), tokens.for_session(a));
        assert_eq!(
            tokens.for_session(a).expose_secret().len(),
            43,
            "256 bits in unpadded base64url"
        );
        assert_ne!(
            tokens.for_session(a),
            HmacRefreshTokens::new(b"key two".to_vec()).for_session(a)
        );
    }

    #[test]
    fn successors_are_stable_but_keyed() {
        let tokens = HmacRefreshTokens::new(b"key one".to_vec());
        let token = tokens.for_session(SessionId::from_uuid(Uuid::now_v7()));
        assert_eq!(tokens.successor_of(&token), tokens.successor_of(&token));
        assert_ne!(tokens.successor_of(&token), token);
        assert_ne!(
            tokens.successor_of(&token),
            HmacRefreshTokens::new(b"key two".to_vec()).successor_of(&token)
        );
        assert_eq!(tokens.fingerprint(&token).0.len(), 32);
    }

    #[test]
    fn request_fingerprints_separate_their_fields() {
        let tokens = HmacRefreshTokens::new(b"key".to_vec());
        assert_ne!(
            tokens.request_fingerprint(&["ab", "c"]),
            tokens.request_fingerprint(&["a", "bc"])
        );
        assert_eq!(
            tokens.request_fingerprint(&["a", "b"]),
            tokens.request_fingerprint(&["a", "b"])
        );
    }
}
