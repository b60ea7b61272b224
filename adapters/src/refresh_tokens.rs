//! Opaque refresh tokens: 256 random bits, stored as SHA-256, successors derived by HMAC.
use application::{RefreshToken, RefreshTokens, TokenFingerprint};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use rand::RngCore;
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

impl RefreshTokens for HmacRefreshTokens {
    fn generate(&self) -> RefreshToken {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        RefreshToken::new(URL_SAFE_NO_PAD.encode(bytes))
    }

    fn successor_of(&self, token: &RefreshToken) -> RefreshToken {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes keys of any length");
        mac.update(b"registrar refresh-token successor\0");
        mac.update(token.expose_secret().as_bytes());
        RefreshToken::new(URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()))
    }

    fn fingerprint(&self, token: &RefreshToken) -> TokenFingerprint {
        TokenFingerprint(Sha256::digest(token.expose_secret().as_bytes()).to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_successors_are_stable_but_keyed() {
        let tokens = HmacRefreshTokens::new(b"key one".to_vec());
        let (a, b) = (tokens.generate(), tokens.generate());
        assert_ne!(a, b);
        assert_eq!(
            a.expose_secret().len(),
            43,
            "256 bits in unpadded base64url"
        );
        assert_eq!(tokens.successor_of(&a), tokens.successor_of(&a));
        assert_ne!(
            tokens.successor_of(&a),
            HmacRefreshTokens::new(b"key two".to_vec()).successor_of(&a)
        );
        assert_eq!(tokens.fingerprint(&a).0.len(), 32);
        assert_ne!(tokens.fingerprint(&a), tokens.fingerprint(&b));
    }
}
