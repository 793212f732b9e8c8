//! Bearer-token authentication and scope checks.
//!
//! Tokens are compared by their SHA-256 in constant time; the plain token is never stored or logged. A missing or
//! unknown token is UNAUTHENTICATED; a known token without the scope is PERMISSION_DENIED.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tonic::metadata::MetadataMap;

use crate::{
    config::{Scope, TokenConfig},
    error::ApiError,
};

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The token's name.
    pub name: String,
    /// Its scope.
    pub scope: Scope,
}

/// The configured tokens.
#[derive(Debug, Clone, Default)]
pub struct Tokens {
    tokens: Vec<([u8; 32], String, Scope)>,
}

/// Hex SHA-256 of a token.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

impl Tokens {
    /// From the configuration (hashes already validated).
    pub fn new(configs: &[TokenConfig]) -> Tokens {
        let tokens = configs
            .iter()
            .filter_map(|t| {
                let bytes = hex::decode(&t.sha256).ok()?;
                let hash: [u8; 32] = bytes.try_into().ok()?;
                Some((hash, t.name.clone(), t.scope))
            })
            .collect();
        Tokens { tokens }
    }

    /// Authenticates the request's bearer token and checks it has `needed`.
    pub fn check(&self, metadata: &MetadataMap, needed: Scope) -> Result<Caller, ApiError> {
        let caller = self.authenticate(metadata)?;
        if caller.scope < needed {
            return Err(ApiError::PermissionDenied(format!(
                "token {:?} has scope {}, this call needs {}",
                caller.name,
                caller.scope.as_str(),
                needed.as_str()
            )));
        }
        Ok(caller)
    }

    fn authenticate(&self, metadata: &MetadataMap) -> Result<Caller, ApiError> {
        let header = metadata.get("authorization").ok_or_else(|| {
            ApiError::Unauthenticated("missing bearer token (header `authorization: Bearer <token>`)".into())
        })?;
        let value = header.to_str().map_err(|_| ApiError::Unauthenticated("malformed authorization header".into()))?;
        let token = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .ok_or_else(|| ApiError::Unauthenticated("the authorization header must be `Bearer <token>`".into()))?;
        let digest: [u8; 32] = Sha256::digest(token.trim().as_bytes()).into();
        // Look at every token, so the time taken does not tell which one nearly matched.
        let mut found = None;
        for (hash, name, scope) in &self.tokens {
            if bool::from(hash.ct_eq(&digest)) {
                found = Some(Caller { name: name.clone(), scope: *scope });
            }
        }
        found.ok_or_else(|| ApiError::Unauthenticated("unknown token".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens() -> Tokens {
        Tokens::new(&[
            TokenConfig { name: "reader".into(), sha256: hash_token("r-token"), scope: Scope::Read },
            TokenConfig { name: "deployer".into(), sha256: hash_token("a-token"), scope: Scope::Apply },
        ])
    }

    fn md(value: Option<&str>) -> MetadataMap {
        let mut m = MetadataMap::new();
        if let Some(v) = value {
            m.insert("authorization", v.parse().unwrap());
        }
        m
    }

    #[test]
    fn scopes_and_failures() {
        let t = tokens();
        assert_eq!(t.check(&md(Some("Bearer r-token")), Scope::Read).unwrap().name, "reader");
        assert!(matches!(t.check(&md(Some("Bearer r-token")), Scope::Plan), Err(ApiError::PermissionDenied(_))));
        assert_eq!(t.check(&md(Some("Bearer a-token")), Scope::Plan).unwrap().name, "deployer");
        assert!(matches!(t.check(&md(Some("Bearer a-token")), Scope::Admin), Err(ApiError::PermissionDenied(_))));
        assert!(matches!(t.check(&md(None), Scope::Read), Err(ApiError::Unauthenticated(_))));
        assert!(matches!(t.check(&md(Some("Bearer nope")), Scope::Read), Err(ApiError::Unauthenticated(_))));
        assert!(matches!(t.check(&md(Some("Basic abc")), Scope::Read), Err(ApiError::Unauthenticated(_))));
    }

    #[test]
    fn hashes() {
        assert_eq!(hash_token("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}
