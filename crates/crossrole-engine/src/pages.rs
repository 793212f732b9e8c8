//! Page tokens: the place a listing stopped, handed to the caller so it can go on — opaque, and only the ones
//! crossroled issued. A token is the position and a keyed digest of it, for the listing it belongs to
//! ([`Listing`]: the operations, one operation's account results, the bindings, the organization's accounts, the
//! audit log); anything else is refused as INVALID_ARGUMENT naming `page_token`, before the journal is asked.
//! Positions are not secrets; the digest only keeps a caller from handing crossroled positions it never gave (a
//! made-up offset, a name that is not a binding's, another operation's place). The key is derived from the journal
//! key, so a token stays good across restarts and on every replica of the journal.

use std::str::FromStr;

use crossrole_core::secret::Redactor;

use crate::Error;

/// The listings that hand out page tokens; a token is good for its own listing only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listing<'a> {
    /// Operations (ListOperations); the position is an operation's place in the journal.
    Operations,
    /// The account results of one operation (ListAccountResults); the position is an account's index.
    AccountResults(&'a str),
    /// Bindings (ListBindings); the position is a binding's name.
    Bindings,
    /// The organization's accounts a selector selects (ListAccounts); the position is an account id.
    Accounts,
    /// The audit log (ListAuditEvents); the position is an entry's place in the log.
    Audit,
    /// The roles of one inventory a query selects (ListInventory), keyed by the inventory and the query; the
    /// position is an account's index and how many of its roles were given.
    Inventory(&'a str),
}

impl Listing<'_> {
    fn name(&self) -> String {
        match self {
            Listing::Operations => "operations".into(),
            Listing::AccountResults(operation) => format!("account results of operation {operation}"),
            Listing::Bindings => "bindings".into(),
            Listing::Accounts => "organization accounts".into(),
            Listing::Audit => "audit".into(),
            Listing::Inventory(query) => format!("inventory {query}"),
        }
    }
}

/// Issues and reads page tokens with a key of crossroled's.
#[derive(Debug, Clone)]
pub struct PageTokens {
    key: Redactor,
}

fn refused() -> Error {
    Error::Invalid(crossrole_core::Error::invalid(
        "page_token",
        "not a token this listing issued: send back the next_page_token of the previous page as it was, or none",
    ))
}

impl PageTokens {
    /// Page tokens keyed with `key` (derived from the journal key: tokens stay valid across restarts and replicas).
    pub fn new(key: [u8; 32]) -> PageTokens {
        PageTokens { key: Redactor::new(key) }
    }

    fn digest(&self, listing: Listing<'_>, position: &str) -> String {
        let digest = self.key.digest(format!("{}\u{0}{position}", listing.name()).as_bytes());
        digest[..16].to_string()
    }

    /// The token for `position` in `listing`.
    pub fn issue(&self, listing: Listing<'_>, position: &str) -> String {
        let encoded: String = position.bytes().map(|b| format!("{b:02x}")).collect();
        format!("{encoded}.{}", self.digest(listing, position))
    }

    /// The position a token of `listing` stands for; `None` for no token (the first page).
    pub fn read(&self, listing: Listing<'_>, token: &str) -> Result<Option<String>, Error> {
        if token.is_empty() {
            return Ok(None);
        }
        let (encoded, digest) = token.split_once('.').ok_or_else(refused)?;
        if encoded.len() % 2 != 0 || encoded.len() > 1024 {
            return Err(refused());
        }
        let bytes: Option<Vec<u8>> =
            (0..encoded.len()).step_by(2).map(|i| u8::from_str_radix(encoded.get(i..i + 2)?, 16).ok()).collect();
        let position = bytes.and_then(|b| String::from_utf8(b).ok()).ok_or_else(refused)?;
        if !same(self.digest(listing, &position).as_bytes(), digest.as_bytes()) {
            return Err(refused());
        }
        Ok(Some(position))
    }

    /// A numeric position (an operation's or an audit entry's place, an account's index) a token stands for.
    pub fn read_number<T: FromStr>(&self, listing: Listing<'_>, token: &str) -> Result<Option<T>, Error> {
        self.read(listing, token)?.map(|p| p.parse::<T>().map_err(|_| refused())).transpose()
    }
}

/// Compares digests without telling, by the time it takes, how much of a forged one was right.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_tokens_it_issued_for_that_listing_are_read() {
        let pages = PageTokens::new([7; 32]);
        let token = pages.issue(Listing::Bindings, "audit-prod");
        assert_eq!(pages.read(Listing::Bindings, &token).ok().flatten().as_deref(), Some("audit-prod"));
        assert_eq!(pages.read(Listing::Bindings, "").ok(), Some(None));
        let other_listing = pages.issue(Listing::Operations, "audit-prod");
        for bad in ["audit-prod", "42", "6175646974.0000000000000000", &other_listing, "zz.00", "."] {
            let e = pages.read(Listing::Bindings, bad).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(e.contains("page_token") && e.contains("not a token this listing issued"), "{bad}: {e}");
        }
        assert!(PageTokens::new([8; 32]).read(Listing::Bindings, &token).is_err(), "another key's token");
    }

    #[test]
    fn a_token_is_for_one_operation_and_numbers_read_back() {
        let pages = PageTokens::new([7; 32]);
        let token = pages.issue(Listing::AccountResults("op-1"), "41");
        assert_eq!(pages.read_number::<u32>(Listing::AccountResults("op-1"), &token).ok().flatten(), Some(41));
        assert!(pages.read_number::<u32>(Listing::AccountResults("op-2"), &token).is_err());
        // A token of ours whose position is not a number for this listing is refused too, not misread.
        let named = pages.issue(Listing::Audit, "abc");
        assert!(pages.read_number::<i64>(Listing::Audit, &named).is_err());
    }
}
